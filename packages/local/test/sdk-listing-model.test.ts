import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as $dara from '@darabonba/typescript';
import { seeded } from '@fc-async/test-kit/random';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../src/index.js';
import { $FC, redisServer, sdk, waitFor } from './helpers.js';

// ListAsyncTasks as the official SDK parses it, on each store behind the emulator, against a model
// of the calls made: a seeded sample of tasks that succeed, fail, wait (a delay) or are stopped, then
// random queries (filters combined, both orders, pages of 1 to 100 walked by nextToken to the end).
// The conformance table's model run (@fc-async/core/conformance) covers the stores themselves.

const FUNCTIONS = `export async function job(event) {
  if (JSON.parse(event.toString('utf8')).fail) throw new Error('failed on purpose');
  return 'done';
}
`;

const S_YAML = `resources:
  job:
    component: fc3
    props:
      functionName: job
      code: ./code
      handler: fns.job
      runtime: nodejs20
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
`;

type Kind = 'ok' | 'fail' | 'delayed' | 'stopped';
const STATUS: Record<Kind, string> = { ok: 'Succeeded', fail: 'Failed', delayed: 'Enqueued', stopped: 'Stopped' };

/** A task sent: its id, its status once settled, and the clock before and after its 202. */
interface Sent {
  taskId: string;
  status: string;
  after: number;
  before: number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function emulatorOn(store: Pick<EmulatorOptions, 'store' | 'redis'>): Promise<Emulator> {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-sdk-listing-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'code'));
  writeFileSync(join(root, 'code', 'fns.mjs'), FUNCTIONS);
  writeFileSync(join(root, 's.yaml'), S_YAML);
  const emulator = await startEmulator({
    config: join(root, 's.yaml'),
    outDir: join(root, 'out'),
    cwd: root,
    port: 0,
    controlPort: 0,
    output: () => {},
    ...store,
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return emulator;
}

async function sampleAgainstModel(emulator: Emulator, seed: number): Promise<void> {
  const random = seeded(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const client = sdk(emulator.controlUrl);
  const sent: Sent[] = [];
  for (let i = 0; i < 36; i++) {
    const kind = pick<Kind>(['ok', 'ok', 'fail', 'delayed', 'stopped']);
    const taskId = `${pick(['order_', 'order_x', 'Order_', 'refund_'])}${String(i).padStart(2, '0')}${pick(['', 'a', '_'])}`;
    const after = Date.now();
    const commonHeaders: Record<string, string> =
      kind === 'delayed' || kind === 'stopped' ? { 'x-fc-async-delay': '3000' } : {};
    const accepted = await client.invokeFunctionWithOptions(
      'job',
      new $FC.InvokeFunctionRequest({ body: Readable.from([Buffer.from(JSON.stringify({ fail: kind === 'fail' }))]) }),
      new $FC.InvokeFunctionHeaders({ xFcInvocationType: 'Async', xFcAsyncTaskId: taskId, commonHeaders }),
      new $dara.RuntimeOptions({}),
    );
    expect(accepted.statusCode, `task ${taskId} accepted`).toBe(202);
    if (kind === 'stopped') await client.stopAsyncTask('job', taskId, new $FC.StopAsyncTaskRequest({}));
    sent.push({ taskId, status: STATUS[kind], after, before: Date.now() });
    // Each task in a millisecond of its own: the model knows the order without the tasks' times.
    const next = Date.now() + 2;
    while (Date.now() < next) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  // Waits (bounded) for every task to settle; GetAsyncTask is only waited on here, not checked.
  for (const { taskId, status } of sent) {
    await waitFor(async () => {
      const task = (await client.getAsyncTask('job', taskId, new $FC.GetAsyncTaskRequest({}))).body;
      return task?.status === status ? true : undefined;
    }, 20_000).catch(() => {
      throw new Error(`task ${taskId} did not reach ${status} within 20 s`);
    });
  }
  const statuses = ['Succeeded', 'Failed', 'Enqueued', 'Stopped', 'Running'];
  for (let q = 0; q < 24; q++) {
    const query: ConstructorParameters<typeof $FC.ListAsyncTasksRequest>[0] = {
      sortOrderByTime: pick(['asc', 'desc']),
      limit: pick([1, 3, 7, 20, 100]),
    };
    if (random() < 0.4) query.status = pick(statuses);
    if (random() < 0.4) {
      const id = pick(sent).taskId;
      query.prefix = random() < 0.15 ? 'none_' : id.slice(0, 1 + Math.floor(random() * id.length));
    }
    // A bound between two tasks' calls: every task sent before it is before it, every later one after.
    const k = Math.floor(random() * sent.length);
    if (random() < 0.3) query.startedTimeBegin = (sent[k - 1]?.before ?? 0) + 1;
    if (random() < 0.3) query.startedTimeEnd = (sent[k] as Sent).after - 1;
    const [begin, end] = [query.startedTimeBegin ?? 0, query.startedTimeEnd ?? Number.MAX_SAFE_INTEGER];
    const expected = sent
      .filter(
        (t) =>
          (query.status === undefined || t.status === query.status) &&
          (query.prefix === undefined || t.taskId.startsWith(query.prefix)) &&
          t.after >= begin &&
          t.before <= end,
      )
      .map((t) => [t.taskId, t.status]);
    if (query.sortOrderByTime === 'desc') expected.reverse();
    const listed: string[][] = [];
    let request = query;
    for (let pages = 1; pages <= 100; pages++) {
      const { body } = await client.listAsyncTasks('job', new $FC.ListAsyncTasksRequest(request));
      const at = `seed ${seed}: listAsyncTasks(${JSON.stringify(query)}), page ${pages}`;
      expect(body?.tasks?.length ?? 0, `${at}: at most its limit`).toBeLessThanOrEqual(request.limit as number);
      for (const t of body?.tasks ?? []) {
        const own = sent.find((s) => s.taskId === t.taskId);
        expect(t.startedTime, `${at}: ${t.taskId}'s startedTime within its call`).toBeGreaterThanOrEqual(
          own?.after ?? 0,
        );
        expect(t.startedTime, `${at}: ${t.taskId}'s startedTime within its call`).toBeLessThanOrEqual(own?.before ?? 0);
        listed.push([t.taskId as string, t.status as string]);
      }
      expect(listed, `${at}: the tasks, their status and order`).toEqual(expected.slice(0, listed.length));
      expect(Boolean(body?.nextToken), `${at}: a nextToken only while tasks follow`).toBe(
        listed.length < expected.length,
      );
      if (!body?.nextToken) break;
      request = { ...query, limit: pick([1, 5, 100]), nextToken: body.nextToken };
    }
    expect(listed, `seed ${seed}: listAsyncTasks(${JSON.stringify(query)}) walked to the end`).toEqual(expected);
  }
}

describe('ListAsyncTasks through the official SDK equals a model of the calls made', () => {
  it('memory', async () => {
    await sampleAgainstModel(await emulatorOn({}), 1);
  });

  it('sqlite', async () => {
    await sampleAgainstModel(await emulatorOn({ store: 'sqlite:tasks.db' }), 2);
  });

  it('bullmq (redis)', async () => {
    const { url } = await redisServer((stop) => cleanups.push(stop));
    await sampleAgainstModel(await emulatorOn({ redis: url }), 3);
  });
});
