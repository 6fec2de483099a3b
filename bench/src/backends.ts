import { join } from 'node:path';
import { bullmq } from '@fc-async/bullmq';
import { type AsyncBackend, createFcHandler, type FcHandler, memory, silentLogger } from '@fc-async/core';
import { sqlite } from '@fc-async/sqlite';
import { type ConnectionOptions, Queue, Worker } from 'bullmq';
import { type BenchEnv, JOB_BODY, jobEvent, type RawSqlite, rawSqlite, startEnv } from './backends-env.js';
import type { BenchCase } from './harness.js';

/** Throughput at least 0.7× the raw library's: time per operation at most 1 / 0.7 of its. */
export const BACKEND_TARGET = 1 / 0.7;

export const BACKENDS_LEGEND = `\
Backends, wall time: each fc-async backend against the raw library doing the same work, same run.
accept = one async FC 3.0 event through createFcHandler until its 202 (the task committed and
queued; sqlite rows use x-fc-async-delay so that no attempt runs meanwhile, bullmq rows an
accept-only instance); the peer stores the same request: a better-sqlite3 INSERT into the same
table with the same WAL/synchronous/locking settings, or a BullMQ queue.add with the request as
job data. tasks = one task end to end (accept, attempt of a no-op app, task record Succeeded);
the peer inserts, claims and finishes a row in three statements (like fc-async, the INSERT at the
row's synchronous level, the UPDATEs at NORMAL), or adds a job that a BullMQ worker with a no-op
processor runs (counted when the processor is called; a second peer row counts it when BullMQ has
recorded the job completed, as fc-async counts its task once the record says Succeeded; the faster
row is the baseline). "burst of 32": 32 at once per operation (fc-async sqlite commits all 32 accepts
at once, the peer inserts them in one transaction; fc-async bullmq sends the 32 records in one
script and the 32 jobs' queue.add in the same write, the peers are 32 queue.add and one addBulk,
the faster one the baseline). Worker concurrency 10;
tracing off (its cost is the tracing sections' subject).
A ratio ≤ 1.43 means throughput ≥ 0.7× the raw library's. "memory (no storage)": the same accept
and task on the in-memory backend, what the engine and the bridge cost without any storage.`;

const BURST = 32;

interface Fixtures {
  env: BenchEnv;
  handlers: FcHandler[];
  close: (() => Promise<unknown>)[];
  sqliteAccept: { FULL: FcHandler; NORMAL: FcHandler };
  sqliteTasks: { FULL: FcHandler; NORMAL: FcHandler };
  rawSqlite: { FULL: RawSqlite; NORMAL: RawSqlite };
  memoryAccept: FcHandler;
  memoryTasks: FcHandler;
  bullAccept: FcHandler;
  bullTasks: { handler: FcHandler; waiters: Map<string, () => void> };
  rawQueue: Queue;
  rawTasks: { queue: Queue; waiters: Map<string, () => void> };
  /** The same raw worker, a task counted once BullMQ has recorded the job completed. */
  rawCompleted: { queue: Queue; waiters: Map<string, () => void> };
}

let fixtures: Promise<Fixtures> | undefined;
let fx: Fixtures;

function handlerOn(backend: AsyncBackend): FcHandler {
  return createFcHandler((_req, res) => res.end('{"ok":true}'), {
    logger: silentLogger,
    env: {},
    async: { mode: 'local', concurrency: 10, maxQueuedTasks: 10_000_000, backend },
    // The peers trace nothing; what tracing costs is the tracing sections' subject.
    tracing: { enabled: false },
  });
}

async function build(): Promise<Fixtures> {
  const env = await startEnv();
  const connection: ConnectionOptions = { host: '127.0.0.1', port: env.redisPort, maxRetriesPerRequest: null };
  const sqliteOn = (name: string, synchronous: 'full' | 'normal') =>
    handlerOn(sqlite(join(env.dir, `${name}.db`), { synchronous }));
  const bullTasks = handlerOn(bullmq({ connection: env.redisUrl, prefix: 'ours-tasks' }));
  const bullWaiters = new Map<string, () => void>();
  bullTasks.engine?.subscribe((e) => {
    if (e.type === 'finished') bullWaiters.get(e.taskId)?.();
  });
  const rawWaiters = new Map<string, () => void>();
  const rawTaskQueue = new Queue('tasks', { connection, prefix: 'raw-tasks' });
  const rawWorker = new Worker(
    'tasks',
    async (job) => {
      rawWaiters.get(job.id as string)?.();
    },
    { connection, prefix: 'raw-tasks', concurrency: 10 },
  );
  const completedWaiters = new Map<string, () => void>();
  const completedQueue = new Queue('tasks', { connection, prefix: 'raw-completed' });
  const completedWorker = new Worker('tasks', async () => undefined, {
    connection,
    prefix: 'raw-completed',
    concurrency: 10,
  });
  completedWorker.on('completed', (job) => completedWaiters.get(job.id as string)?.());
  const rawQueue = new Queue('tasks', { connection, prefix: 'raw-accept' });
  const f: Fixtures = {
    env,
    handlers: [],
    close: [
      () => rawWorker.close(),
      () => rawTaskQueue.close(),
      () => completedWorker.close(),
      () => completedQueue.close(),
      () => rawQueue.close(),
    ],
    sqliteAccept: { FULL: sqliteOn('accept-full', 'full'), NORMAL: sqliteOn('accept-normal', 'normal') },
    sqliteTasks: { FULL: sqliteOn('tasks-full', 'full'), NORMAL: sqliteOn('tasks-normal', 'normal') },
    rawSqlite: {
      FULL: rawSqlite(join(env.dir, 'raw-full.db'), 'FULL'),
      NORMAL: rawSqlite(join(env.dir, 'raw-normal.db'), 'NORMAL'),
    },
    memoryAccept: handlerOn(memory()),
    memoryTasks: handlerOn(memory()),
    bullAccept: handlerOn(bullmq({ connection: env.redisUrl, prefix: 'ours-accept', worker: false })),
    bullTasks: { handler: bullTasks, waiters: bullWaiters },
    rawQueue,
    rawTasks: { queue: rawTaskQueue, waiters: rawWaiters },
    rawCompleted: { queue: completedQueue, waiters: completedWaiters },
  };
  f.handlers.push(f.sqliteAccept.FULL, f.sqliteAccept.NORMAL, f.sqliteTasks.FULL, f.sqliteTasks.NORMAL);
  f.handlers.push(f.memoryAccept, f.memoryTasks, f.bullAccept, bullTasks);
  await Promise.all([
    ...f.handlers.map((h) => h.engine?.whenReady()),
    rawWorker.waitUntilReady(),
    completedWorker.waitUntilReady(),
  ]);
  return f;
}

const setup = async () => {
  fixtures ??= build();
  fx = await fixtures;
};

let n = 0;
const nextId = (prefix: string) => `${prefix}_${(n++).toString(36)}`;

async function accept(handler: FcHandler, delaySeconds?: number): Promise<string> {
  const taskId = nextId('t');
  const result = await handler(jobEvent(taskId, delaySeconds));
  if (result.statusCode !== 202) throw new Error(`accept answered ${result.statusCode}: ${result.body}`);
  return taskId;
}

/** Resolves when `register` has been told the task ran. */
function ran(waiters: Map<string, () => void>, taskId: string): Promise<void> {
  return new Promise((resolve) =>
    waiters.set(taskId, () => {
      waiters.delete(taskId);
      resolve();
    }),
  );
}

const rawJob = () => ({ method: 'POST', url: '/transcode', headers: jobEvent('x').headers, body: JOB_BODY });
const times = <T>(count: number, fn: () => Promise<T>) => Promise.all(Array.from({ length: count }, fn));

async function bullTask(): Promise<void> {
  const taskId = nextId('b');
  const done = ran(fx.bullTasks.waiters, taskId);
  const result = await fx.bullTasks.handler(jobEvent(taskId));
  if (result.statusCode !== 202) throw new Error(`accept answered ${result.statusCode}`);
  await done;
}

const rawBulkJob = (jobId: string) => ({ name: 'task', data: rawJob(), opts: { jobId, removeOnComplete: true } });

async function rawBulkTasks(): Promise<void> {
  const ids = Array.from({ length: BURST }, () => nextId('r'));
  const done = Promise.all(ids.map((id) => ran(fx.rawTasks.waiters, id)));
  await fx.rawTasks.queue.addBulk(ids.map(rawBulkJob));
  await done;
}

async function rawTask(on: 'run' | 'completed' = 'run'): Promise<void> {
  const jobId = nextId('r');
  const { queue, waiters } = on === 'run' ? fx.rawTasks : fx.rawCompleted;
  const done = ran(waiters, jobId);
  await queue.add('task', rawJob(), { jobId, removeOnComplete: true });
  await done;
}

function sqliteCases(sync: 'FULL' | 'NORMAL'): BenchCase[] {
  return [
    {
      group: `sqlite accept, synchronous=${sync}`,
      name: 'better-sqlite3 INSERT',
      role: 'peer',
      check: setup,
      fn: () => fx.rawSqlite[sync].insert(nextId('r')),
    },
    {
      group: `sqlite accept, synchronous=${sync}`,
      name: 'fc-async sqlite() → 202',
      target: BACKEND_TARGET,
      check: setup,
      fn: () => accept(fx.sqliteAccept[sync], 3599),
    },
    {
      group: `sqlite tasks, synchronous=${sync}`,
      name: 'better-sqlite3 INSERT + 2 UPDATE',
      role: 'peer',
      check: setup,
      fn: () => {
        const id = nextId('r');
        fx.rawSqlite[sync].insert(id);
        fx.rawSqlite[sync].run(id);
      },
    },
    {
      group: `sqlite tasks, synchronous=${sync}`,
      name: 'fc-async sqlite() task',
      target: BACKEND_TARGET,
      check: setup,
      fn: async () => {
        await accept(fx.sqliteTasks[sync]);
        await fx.sqliteTasks[sync].drain();
      },
    },
  ];
}

/** `npm run bench` rows for the sqlite and bullmq backends (redis-server started on first use). */
export function backendCases(): BenchCase[] {
  return [
    // What the engine and the bridge cost without storage: the floor under every backend's row.
    {
      group: 'memory (no storage)',
      name: 'fc-async memory() → 202',
      check: setup,
      fn: () => accept(fx.memoryAccept, 3599),
    },
    {
      group: 'memory (no storage)',
      name: 'fc-async memory() task',
      check: setup,
      fn: async () => {
        await accept(fx.memoryTasks);
        await fx.memoryTasks.drain();
      },
    },
    ...sqliteCases('FULL'),
    {
      group: `sqlite accept, synchronous=FULL, burst of ${BURST}`,
      name: `better-sqlite3 ${BURST} INSERT, 1 transaction`,
      role: 'peer',
      check: setup,
      fn: () => fx.rawSqlite.FULL.insertAll(Array.from({ length: BURST }, () => nextId('r'))),
    },
    {
      group: `sqlite accept, synchronous=FULL, burst of ${BURST}`,
      name: `fc-async sqlite() ${BURST} → 202`,
      target: BACKEND_TARGET,
      check: setup,
      fn: () => times(BURST, () => accept(fx.sqliteAccept.FULL, 3599)),
    },
    ...sqliteCases('NORMAL'),
    {
      group: 'bullmq accept',
      name: 'BullMQ queue.add',
      role: 'peer',
      check: setup,
      fn: () => fx.rawQueue.add('task', rawJob(), { jobId: nextId('r') }),
    },
    {
      group: 'bullmq accept',
      name: 'fc-async bullmq() → 202',
      target: BACKEND_TARGET,
      check: setup,
      fn: () => accept(fx.bullAccept),
    },
    {
      group: `bullmq accept, burst of ${BURST}`,
      name: `BullMQ ${BURST} queue.add`,
      role: 'peer',
      check: setup,
      fn: () => times(BURST, () => fx.rawQueue.add('task', rawJob(), { jobId: nextId('r') })),
    },
    {
      group: `bullmq accept, burst of ${BURST}`,
      name: `BullMQ addBulk of ${BURST}`,
      role: 'peer',
      check: setup,
      fn: () => fx.rawQueue.addBulk(Array.from({ length: BURST }, () => rawBulkJob(nextId('r')))),
    },
    {
      group: `bullmq accept, burst of ${BURST}`,
      name: `fc-async bullmq() ${BURST} → 202`,
      target: BACKEND_TARGET,
      check: setup,
      fn: () => times(BURST, () => accept(fx.bullAccept)),
    },
    { group: 'bullmq tasks', name: 'BullMQ add + no-op worker', role: 'peer', check: setup, fn: () => rawTask() },
    {
      group: 'bullmq tasks',
      name: 'BullMQ add + no-op worker, until completed',
      role: 'peer',
      check: setup,
      fn: () => rawTask('completed'),
    },
    { group: 'bullmq tasks', name: 'fc-async bullmq() task', target: BACKEND_TARGET, check: setup, fn: bullTask },
    {
      group: `bullmq tasks, burst of ${BURST}`,
      name: `BullMQ ${BURST} add + no-op worker`,
      role: 'peer',
      check: setup,
      fn: () => times(BURST, () => rawTask()),
    },
    {
      group: `bullmq tasks, burst of ${BURST}`,
      name: `BullMQ addBulk of ${BURST} + no-op worker`,
      role: 'peer',
      check: setup,
      fn: rawBulkTasks,
    },
    {
      group: `bullmq tasks, burst of ${BURST}`,
      name: `fc-async bullmq() ${BURST} tasks`,
      target: BACKEND_TARGET,
      check: setup,
      fn: () => times(BURST, bullTask),
    },
  ];
}

/** Closes every handler, queue and database, and stops redis-server. */
export async function backendsTeardown(): Promise<void> {
  if (!fixtures) return;
  const f = await fixtures;
  fixtures = undefined;
  await Promise.all(f.handlers.map((h) => h.close({ timeoutMs: 1 })));
  await Promise.all(f.close.map((close) => close()));
  f.rawSqlite.FULL.db.close();
  f.rawSqlite.NORMAL.db.close();
  f.env.stop();
}
