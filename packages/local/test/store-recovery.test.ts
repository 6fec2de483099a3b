import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTask, TaskRecord, TaskStore } from '@fc-async/core';
import { silentLogger } from '@fc-async/core';
import { sqlite } from '@fc-async/sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// What `fc-async dev --store sqlite:PATH` finds after a SIGKILL: the file as the killed process
// left it, written here through the store so that the moment of the kill is exact.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An s.yaml project: `orders` (0 retries, both destinations to `dest`), and `dest`, which appends each record it gets. */
function project(): { dir: string; received: () => { condition: string; requestId: string }[] } {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-recovery-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'received.jsonl');
  writeFileSync(join(dir, 'orders.mjs'), `export const handler = async () => ({ statusCode: 200, body: 'ran' });\n`);
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
  const arn = 'acs:fc:cn-hangzhou:0:functions/dest';
  writeFileSync(
    join(dir, 's.yaml'),
    `edition: 3.0.0
name: recovery
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
        maxAsyncRetryAttempts: 0
        destinationConfig:
          onSuccess:
            destination: ${arn}
          onFailure:
            destination: ${arn}
  dest:
    component: fc3
    props:
      functionName: dest
      runtime: nodejs20
      code: ./
      handler: dest.handler
`,
  );
  const received = () => {
    try {
      return readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { condition: string; requestId: string });
    } catch {
      return [];
    }
  };
  return { dir, received };
}

function record(taskId: string, overrides: Partial<TaskRecord>): TaskRecord {
  const now = Date.now() - 1000;
  return {
    taskId,
    requestId: `1-6b0c2825-${taskId.padStart(24, '0')}`,
    status: 'Enqueued',
    functionArn: 'acs:fc:cn-hangzhou:0:functions/orders',
    qualifier: 'LATEST',
    startedTime: now,
    alreadyRetriedTimes: 0,
    events: [{ eventId: 1, status: 'Enqueued', timestamp: now, eventDetail: '' }],
    payload: { method: 'POST', url: '/work', headers: { 'content-type': 'text/plain' }, body: Buffer.from('work') },
    acceptedAt: now,
    attempts: 0,
    ...overrides,
  };
}

/** Writes the records into the function's SQLite file as a process killed with SIGKILL leaves them. */
async function leave(file: string, records: TaskRecord[]): Promise<void> {
  const { store, queue } = await sqlite(file).create({ concurrency: 1, logger: silentLogger });
  for (const r of records) await store.insert(r);
  await queue.close();
  (store as TaskStore & { close(): void }).close();
}

describe('fc-async dev --store sqlite:PATH after a SIGKILL', () => {
  it("makes the s.yaml destination calls the crash cut short, with the s.yaml's retry policy", async () => {
    const { dir, received } = project();
    await leave(join(dir, 'tasks.orders.db'), [
      // It had ended; the kill came while its onSuccess record was on its way to `dest`.
      record('ended_undelivered', {
        status: 'Succeeded',
        attempts: 1,
        condition: '',
        endTime: Date.now() - 500,
        returnPayload: 'ran',
        deliveryPending: true,
      }),
      // Its first attempt was running: with 0 retries in the s.yaml, it fails to onFailure.
      record('interrupted', { status: 'Running', attempts: 1 }),
    ]);
    const emulator = await startEmulator({
      config: join(dir, 's.yaml'),
      port: 0,
      controlPort: 0,
      store: `sqlite:${join(dir, 'tasks.db')}`,
      output: () => {},
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const task = async (taskId: string) => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/orders/async-tasks/${taskId}`);
      return (await res.json()) as AsyncTask;
    };

    const delivered = await waitFor(async () => {
      const t = await task('ended_undelivered');
      return t.destinationStatus ? t : undefined;
    });
    expect(delivered.destinationStatus).toBe('Succeeded');
    const interrupted = await waitFor(async () => {
      const t = await task('interrupted');
      return t.destinationStatus ? t : undefined;
    });
    expect(interrupted).toMatchObject({ status: 'Failed', destinationStatus: 'Succeeded' });
    await waitFor(() => (received().length === 2 ? true : undefined));
    expect(received()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ requestId: record('ended_undelivered', {}).requestId, condition: '' }),
        expect.objectContaining({ requestId: record('interrupted', {}).requestId, condition: 'InvocationError' }),
      ]),
    );
  });
});
