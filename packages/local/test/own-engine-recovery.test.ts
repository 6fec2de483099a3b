import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTask, TaskRecord, TaskStore } from '@fc-async/core';
import { silentLogger } from '@fc-async/core';
import { sqlite } from '@fc-async/sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// An entry that is an fc-async handler with its own SQLite store: the store recovers on start what
// a killed process left (here written through the store, so that the moment of the kill is exact),
// and that must follow the s.yaml async config, which the emulator applies after loading the entry.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));

/**
 * An s.yaml project: `orders`, an fc-async handler over its own `own.db` (after `topLevel`, run at
 * its module's top level), whose onSuccess goes to `dest`, which appends each record it gets.
 */
function project(topLevel = '') {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-own-recovery-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'received.jsonl');
  writeFileSync(
    join(dir, 'orders.mjs'),
    // The packages by URL: a module in the temp folder would not find the workspace's.
    `import { createFcHandler } from ${url('@fc-async/core')};
import { sqlite } from ${url('@fc-async/sqlite')};
export const handler = createFcHandler((req, res) => res.end('ran'), {
  async: { backend: sqlite(${JSON.stringify(join(dir, 'own.db'))}) },
});
${topLevel}
`,
  );
  writeFileSync(
    join(dir, 'dest.mjs'),
    `import { appendFileSync } from 'node:fs';
export const handler = async (event) => {
  const record = JSON.parse(event.toString('utf8'));
  appendFileSync(${JSON.stringify(log)}, JSON.stringify(record.requestContext) + '\\n');
  return 'ok';
};
`,
  );
  writeFileSync(
    join(dir, 's.yaml'),
    `edition: 3.0.0
name: own-recovery
resources:
  orders:
    component: fc3
    props:
      functionName: orders
      runtime: nodejs20
      code: ./
      handler: orders.handler
      triggers:
        - triggerName: http
          triggerType: http
      asyncInvokeConfig:
        destinationConfig:
          onSuccess:
            destination: acs:fc:cn-hangzhou:0:functions/dest
  dest:
    component: fc3
    props:
      functionName: dest
      runtime: nodejs20
      code: ./
      handler: dest.handler
`,
  );
  const received = (): { condition: string; requestId: string }[] => {
    try {
      return readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
    } catch {
      return [];
    }
  };
  return { dir, received };
}

/** A task that had ended when the process was killed, its onSuccess record on its way out. */
function endedUndelivered(): TaskRecord {
  const now = Date.now() - 1000;
  return {
    taskId: 'ended_undelivered',
    requestId: '1-6b0c2825-000000000000ended_undelivered',
    status: 'Succeeded',
    functionArn: 'acs:fc:cn-hangzhou:0:functions/orders',
    qualifier: 'LATEST',
    startedTime: now,
    endTime: now + 500,
    alreadyRetriedTimes: 0,
    events: [{ eventId: 1, status: 'Succeeded', timestamp: now + 500, eventDetail: '' }],
    payload: { method: 'POST', url: '/work', headers: { 'content-type': 'text/plain' }, body: Buffer.from('work') },
    acceptedAt: now,
    attempts: 1,
    condition: '',
    returnPayload: 'ran',
    deliveryPending: true,
  };
}

/** Writes the record into the SQLite file as a process killed with SIGKILL leaves it. */
async function leave(file: string, record: TaskRecord): Promise<void> {
  const { store, queue } = await sqlite(file).create({ concurrency: 1, logger: silentLogger });
  await store.insert(record);
  await queue.close();
  (store as TaskStore & { close(): void }).close();
}

/** An async request the entry sends its own handler at its top level, awaiting the 202. */
const SELF_REQUEST = `const answer = await handler({
  version: 'v1', rawPath: '/', body: '', isBase64Encoded: false, queryParameters: {},
  headers: { 'x-fc-invocation-type': 'Async' },
  requestContext: { accountId: '0', requestId: 'self', timeEpoch: String(Date.now()),
    http: { method: 'POST', path: '/', sourceIp: '127.0.0.1' } },
}, { requestId: 'self', function: { name: 'orders' } });
if (answer.statusCode !== 202) throw new Error('the request to itself got ' + answer.statusCode);`;

async function start(dir: string, output: (line: string) => void = () => {}) {
  const emulator = await startEmulator({ config: join(dir, 's.yaml'), port: 0, controlPort: 0, output });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return emulator;
}

describe("an entry's fc-async handler with its own SQLite store, after a SIGKILL", () => {
  it('makes the destination call the crash cut short to the s.yaml destination', async () => {
    const { dir, received } = project();
    const task = endedUndelivered();
    await leave(join(dir, 'own.db'), task);
    const emulator = await start(dir);

    const delivered = await waitFor(async () => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/orders/async-tasks/${task.taskId}`);
      const t = (await res.json()) as AsyncTask;
      return t.destinationStatus ? t : undefined;
    });
    expect(delivered.destinationStatus).toBe('Succeeded');
    await waitFor(() => (received().length > 0 ? true : undefined));
    expect(received()).toEqual([expect.objectContaining({ requestId: task.requestId, condition: '' })]);
  });

  it.each([
    ['its readiness', 'await handler.engine.whenReady();'],
    ['an async request to itself', SELF_REQUEST],
  ])('starts when the entry awaits %s at its top level, and says the config came late', async (_, topLevel) => {
    const { dir } = project(topLevel);
    await leave(join(dir, 'own.db'), endedUndelivered());
    const lines: string[] = [];
    const emulator = await start(dir, (line) => lines.push(line));

    expect(emulator.functions).toEqual(['orders', 'dest']);
    expect(lines.join('\n')).toContain(
      'orders: its fc-async handler waited for its async backend while the entry loaded',
    );
  });
});

describe('an entry that fails to load after making its fc-async handler', () => {
  it.each([
    ['throws at its top level', `throw new Error('FC_DB_URL is not set');`, /FC_DB_URL is not set/],
    ['exports nothing servable under the name asked for', '', /exports no Express/],
  ])(
    '%s: the store of that handler never starts (nothing it owes runs in a failed start)',
    async (_, topLevel, error) => {
      const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-own-failed-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const started = `fcAsyncStarted_${Math.random().toString(36).slice(2)}`;
      writeFileSync(
        join(dir, 'broken.mjs'),
        `import { createFcHandler, memory } from ${url('@fc-async/core')};
const inner = memory();
export const kept = createFcHandler((req, res) => res.end('ran'), {
  async: {
    backend: { name: 'probe', persistent: true, create(context) { globalThis.${started} = true; return inner.create(context); } },
  },
});
${topLevel}
`,
      );
      const file = join(dir, 'broken.mjs');
      const run = startEmulator({ entry: file, name: 'broken', port: 0, controlPort: 0, output: () => {} });
      await expect(run).rejects.toThrow(error);
      // open() starts a held backend within the microtasks it sets off: all run by now.
      await new Promise((resolve) => setImmediate(resolve));
      expect((globalThis as Record<string, unknown>)[started]).toBeUndefined();
    },
  );
});
