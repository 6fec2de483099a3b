import assert from 'node:assert/strict';
import {
  ASYNC_TASK_STATUSES,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
  type TransitionOptions,
} from './async/backend.js';
import { pageTasks } from './async/paging.js';
import type { RetentionOptions } from './async/retention-options.js';
import type { AsyncTaskStatus } from './fc-types.js';

// The TaskStore conformance table, public as `@fc-async/core/conformance`: what the engine relies on
// from every store. No test runner here: the checks are `node:assert/strict`, so any runner that
// reports a thrown error (vitest, node:test, jest, mocha) runs the table.

/**
 * A store under test, on fresh storage of its own; the test file closes it after each case.
 *
 * @example
 * ```ts
 * import type { TaskStore } from '@fc-async/core';
 *
 * declare const store: TaskStore;
 * const opened: OpenedTaskStore = { store, reopen: async () => store, prune: async () => 0 };
 * ```
 */
export interface OpenedTaskStore {
  store: TaskStore;
  /**
   * The same tasks through another store: a second instance on the same storage (distributed),
   * or the storage reopened after closing `store` (persistent). Use `store` no more after it.
   */
  reopen(): Promise<TaskStore>;
  /**
   * One pruning pass with the retention `open` was given; resolves to the number of tasks deleted.
   * Only the cases with `usesPrune` call it.
   */
  prune(): Promise<number>;
}

/**
 * Opens a store on fresh storage, with `retention` for its pruning. Each case of
 * {@link taskStoreCases} calls it (some twice), and closes nothing: close what it opened after each case.
 *
 * @example
 * ```ts
 * import type { RetentionOptions, TaskStore } from '@fc-async/core';
 *
 * declare function myStore(options?: RetentionOptions): TaskStore & { prune(): Promise<number> };
 * const open: OpenTaskStore = async (retention) => {
 *   const store = myStore(retention);
 *   return { store, reopen: async () => store, prune: () => store.prune() };
 * };
 * ```
 */
export type OpenTaskStore = (retention?: RetentionOptions) => Promise<OpenedTaskStore>;

/**
 * One case of the TaskStore conformance table: `run` resolves when the store behaves, and rejects
 * with an `AssertionError` that says which behaviour it broke.
 *
 * @example
 * ```ts
 * declare const open: OpenTaskStore;
 * const first: TaskStoreCase | undefined = taskStoreCases[0];
 * await first?.run(open);
 * ```
 */
export interface TaskStoreCase {
  name: string;
  /**
   * The case calls `prune()`: a store whose retention is no pass of its own (a TTL, or none) leaves
   * it out (`taskStoreCases.filter((c) => !c.usesPrune)`).
   */
  usesPrune?: true;
  /**
   * The case inserts a task under the id of one the queue refused (`Invalid`), which a store
   * replaces (see `TaskStore.insert`). A store written before it did, which answers `false` for
   * such an id (the caller is answered 409, saying the task never ran), leaves it out
   * (`taskStoreCases.filter((c) => !c.replacesInvalid)`).
   */
  replacesInvalid?: true;
  run(open: OpenTaskStore): Promise<void>;
}

/**
 * A task record as the engine builds it (`Enqueued`, a binary body), with overrides.
 *
 * @example
 * ```ts
 * import type { TaskStore } from '@fc-async/core';
 *
 * declare const store: TaskStore;
 * await store.insert(taskRecord('t_1', { status: 'Running', attempts: 1 }));
 * ```
 */
export function taskRecord(taskId: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = overrides.acceptedAt ?? Date.now();
  const status: AsyncTaskStatus = overrides.status ?? 'Enqueued';
  return {
    taskId,
    requestId: `1-64f6d6e7-${taskId.padStart(24, '0').slice(-24)}`,
    status,
    functionArn: 'acs:fc:local:0:functions/demo',
    qualifier: 'LATEST',
    startedTime: now,
    alreadyRetriedTimes: 0,
    events: [{ eventId: 1, status: 'Enqueued', timestamp: now, eventDetail: '' }],
    payload: {
      method: 'POST',
      url: '/jobs?x=1',
      headers: { 'content-type': 'application/octet-stream', 'x-fc-async-task-id': taskId },
      body: Buffer.from([0, 1, 2, 255]),
    },
    acceptedAt: now,
    attempts: 0,
    ...overrides,
  };
}

/** A plain object or array without its properties set to `undefined` (a store may keep or drop them). */
function defined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(defined);
  if (value === null || typeof value !== 'object') return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, defined(v)]),
  );
}

/** Rethrows an `AssertionError` with the store behaviour it checks first, the diff kept below. */
function saying(behaviour: string, check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof assert.AssertionError) error.message = `${behaviour}\n${error.message}`;
    throw error;
  }
}

/** Deep equality, strict on types, a property set to `undefined` counted as absent. */
function equal(actual: unknown, expected: unknown, behaviour: string): void {
  saying(behaviour, () => assert.deepStrictEqual(defined(actual), defined(expected)));
}

function ok(value: boolean, behaviour: string): void {
  assert.ok(value, behaviour);
}

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** Every field set. Required<>: a field added to TaskRecord makes this name it, and each store's codec keep it. */
function fullRecord(): Required<TaskRecord> {
  return {
    ...taskRecord('t_full'),
    status: 'Succeeded',
    instanceId: 'i-1',
    startedTime: 1_700_000_000_000,
    endTime: 1_700_000_001_000,
    durationMs: 1000,
    alreadyRetriedTimes: 2,
    destinationStatus: 'Failed',
    taskErrorMessage: 'boom "quoted" \\ \n',
    taskPayload: '{"x":1}',
    returnPayload: 'done ✓',
    events: [
      { eventId: 1, status: 'Enqueued', timestamp: 1_700_000_000_000, eventDetail: '' },
      { eventId: 2, status: 'Succeeded', timestamp: 1_700_000_001_000 },
    ],
    traceId: '0af7651916cd43dd8448eb211c80319c',
    acceptedAt: 1_699_999_999_000,
    attempts: 3,
    dueAt: 1_700_000_000_500,
    condition: '',
    lastStatusCode: 503,
    lastErrorType: 'DiskFull',
    traceContext: { traceparent: TRACEPARENT },
    deliveryPending: true,
    deliveredTo: [0, 2],
    deliveryTraceContext: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    payload: {
      method: 'PUT',
      url: '/a%20b?x=1',
      headers: { 'x-multi': ['a', 'b'], 'content-type': 'application/octet-stream' },
      body: Buffer.from([0, 255, 10]),
      remoteAddress: '203.0.113.7',
      // isMiddlewareReplay's mark travels with the task: a store that drops it unmarks its replays.
      acceptedByMiddleware: true,
    },
  };
}

const ids = (records: { taskId: string }[]) => records.map((r) => r.taskId);

/** Inserts `taskId` and has the queue refuse it, as the engine records that: `Invalid`, with its end time. */
async function refused(store: TaskStore, taskId: string, endTime = Date.now()): Promise<void> {
  equal(await store.insert(taskRecord(taskId, { startedTime: endTime })), true, `insert of ${taskId} resolves to true`);
  const invalid = await store.transition(taskId, 'Invalid', {
    from: ['Enqueued'],
    patch: { endTime, taskErrorMessage: 'The task could not be queued' },
  });
  equal(invalid?.status, 'Invalid', `transition of ${taskId} to Invalid applies`);
}

/** A task sent again under a refused task's id: another request, body, start time and trace. */
function resent(taskId: string, startedTime: number): TaskRecord {
  return taskRecord(taskId, {
    requestId: `1-64f6d6e7-resent${taskId.padStart(18, '0').slice(-18)}`,
    startedTime,
    acceptedAt: startedTime,
    events: [{ eventId: 1, status: 'Enqueued', timestamp: startedTime, eventDetail: '' }],
    traceContext: { traceparent: TRACEPARENT },
    payload: {
      method: 'PUT',
      url: '/again',
      headers: { 'x-fc-async-task-id': taskId },
      body: Buffer.from([9, 8, 7]),
    },
  });
}

/**
 * `count` tasks listed against `pageTasks` (the reference paging of records held in memory) for
 * every query: whole pages of `limit`, `Succeeded` ones in pages of `succeeded`, `resize_` ones in
 * pages of `resize`.
 */
async function listsAsMemory(open: OpenTaskStore, count: number, [limit, succeeded, resize]: number[]): Promise<void> {
  const { store } = await open();
  const all: TaskRecord[] = [];
  const statuses: AsyncTaskStatus[] = ['Enqueued', 'Succeeded', 'Failed', 'Running'];
  for (let i = 0; i < count; i++) {
    // Several tasks share a start time so that the task id breaks ties.
    const r = taskRecord(`${i % 3 === 0 ? 'resize_' : 'job_'}${String(i).padStart(String(count - 1).length, '0')}`, {
      startedTime: 1_700_000_000_000 + Math.floor(i / 4) * 1000,
      status: statuses[i % 4],
    });
    all.push(r);
    await store.insert(r);
  }
  const queries: TaskQuery[] = [
    {},
    { limit },
    { limit, sortOrderByTime: 'asc' },
    { status: 'Succeeded', limit: succeeded },
    { prefix: 'resize_', limit: resize, sortOrderByTime: 'asc' },
    { startedTimeBegin: 1_700_000_003_000, startedTimeEnd: 1_700_000_008_000, limit: 6 },
    { prefix: 'job_', status: 'Failed', limit: 3 },
    { prefix: 'none' },
  ];
  for (const query of queries) {
    let expected = pageTasks(all, query);
    let actual = await store.list(query);
    let pages = 0;
    for (;;) {
      const page = `list(${JSON.stringify(query)}), page ${pages + 1}`;
      equal(ids(actual.tasks), ids(expected.tasks), `${page}: the tasks and their order`);
      equal(actual.nextToken, expected.nextToken, `${page}: nextToken`);
      if (!expected.nextToken) break;
      pages++;
      expected = pageTasks(all, { ...query, nextToken: expected.nextToken });
      actual = await store.list({ ...query, nextToken: actual.nextToken });
    }
    if (query.limit === limit)
      ok(pages > 3, `list(${JSON.stringify(query)}) pages ${count} tasks (${pages + 1} pages)`);
  }
}

/**
 * Walks `list` page by page in both orders, with and without a status filter, while tasks are
 * inserted (before, after and within the millisecond of the page's last task) and end between
 * pages, as during a pulse test: every task that matched throughout is listed once, and no task
 * twice. A store that pages by offset fails it (a task inserted ahead shifts the rest by one).
 */
async function pagesWhileChanging(open: OpenTaskStore): Promise<void> {
  const { store } = await open();
  const t0 = 1_700_000_000_000;
  const at = (n: number) => t0 + Math.floor(n / 3) * 1000;
  const base = Array.from({ length: 60 }, (_, i) => `base_${String(i).padStart(3, '0')}`);
  for (const [i, taskId] of base.entries()) await store.insert(taskRecord(taskId, { startedTime: at(i) }));
  let added = 0;
  const ended = new Set<string>();
  for (const query of [
    { limit: 7 },
    { limit: 7, sortOrderByTime: 'asc' },
    { limit: 10, status: 'Enqueued' },
    { limit: 10, status: 'Enqueued', sortOrderByTime: 'asc' },
  ] satisfies TaskQuery[]) {
    const seen = new Map<string, number>();
    let page = await store.list(query);
    for (let pages = 1; ; pages++) {
      for (const task of page.tasks) seen.set(task.taskId, (seen.get(task.taskId) ?? 0) + 1);
      const last = page.tasks[page.tasks.length - 1];
      if (!page.nextToken || !last || pages > 500) break;
      const time = last.startedTime ?? 0;
      // Before and after the last task listed, and in its millisecond on either side of its id.
      for (const startedTime of [time - 1500, time + 1500]) {
        await store.insert(taskRecord(`new_${String(added++).padStart(4, '0')}`, { startedTime }));
      }
      for (const taskId of [`${last.taskId}a`, last.taskId.slice(0, -1)]) {
        await store.insert(taskRecord(taskId, { startedTime: time }));
      }
      // One task already listed and one not yet listed end.
      for (const taskId of [last.taskId, base[(pages * 13) % base.length] as string]) {
        const done = await store.transition(taskId, 'Succeeded', {
          from: ['Enqueued'],
          patch: { endTime: Date.now() },
        });
        if (done) ended.add(taskId);
      }
      page = await store.list({ ...query, nextToken: page.nextToken });
    }
    const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
    equal(twice, [], `list(${JSON.stringify(query)}) walked while tasks were added and ended lists no task twice`);
    const throughout = base.filter((id) => query.status === undefined || !ended.has(id));
    equal(
      throughout.filter((id) => !seen.has(id)),
      [],
      `list(${JSON.stringify(query)}) walked while tasks were added and ended lists every task that matched throughout`,
    );
  }
}

/** A small seeded generator (mulberry32): the same seed gives the same operations on every store. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the model knows of a task: enough to list it. */
interface ModelTask {
  taskId: string;
  status: AsyncTaskStatus;
  startedTime: number;
  attempts: number;
  endTime?: number | undefined;
  deliveryPending?: boolean | undefined;
}

/** Byte order of ASCII ids, as the stores sort them (an index, a Redis sorted set, SQLite's BINARY). */
function byKey(a: ModelTask, b: ModelTask): number {
  return a.startedTime - b.startedTime || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0);
}

/** The model's answer to a query: every task that matches, in the query's order. */
function modelList(tasks: Iterable<ModelTask>, query: TaskQuery): ModelTask[] {
  const matched = [...tasks].filter(
    (t) =>
      (query.status === undefined || t.status === query.status) &&
      (query.prefix === undefined || t.taskId.startsWith(query.prefix)) &&
      (query.startedTimeBegin === undefined || t.startedTime >= query.startedTimeBegin) &&
      (query.startedTimeEnd === undefined || t.startedTime <= query.startedTimeEnd),
  );
  matched.sort(byKey);
  return query.sortOrderByTime === 'asc' ? matched : matched.reverse();
}

/** Options of one seeded run of {@link modelRun}. */
interface ModelOptions {
  seed: number;
  steps: number;
  /** Calls `prune()` now and then, the store opened with this retention (else none). */
  retention?: { maxTasks: number; retentionMs: number };
  /** Accepts now and then the id of a task the queue refused (`Invalid`), which replaces it. */
  resendsRefused?: boolean;
}

/**
 * One seeded random run of what the engine does to a store (accepts, a refused accept and the id
 * sent again, claims, attempts that succeed, fail or back off to a retry, stops of queued and
 * running tasks, expiry, destination calls ending, delays, pruning, another store on the same
 * storage), each step followed by random ListAsyncTasks queries (filters combined, both orders,
 * pages of 1 to 100, walked by nextToken to the end) compared with a model of the tasks kept from
 * the operations alone. A failure names the seed, the step and the query.
 */
async function modelRun(
  open: OpenTaskStore,
  { seed, steps, retention, resendsRefused = false }: ModelOptions,
): Promise<void> {
  const random = seeded(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number) => random() < p;
  // No pruning pass of the store's own timer: the run's are the only ones.
  const opened = await open(retention && { ...retention, pruneIntervalMs: 3_600_000 });
  let reopened = false;
  let store = opened.store;
  const realStart = Date.now();
  // With retention: the clock starts `retentionMs` and 5 minutes ago, so that tasks ending in the
  // first 5 minutes of the run end past retention; it then jumps 10 minutes, over the cutoff
  // (which moves on with the real clock while the test runs). Without: an hour ago.
  const cutoffAt = realStart - 5 * 60_000;
  let clock = retention ? cutoffAt - retention.retentionMs - 5 * 60_000 : realStart - 3_600_000;
  const tick = (ms: number) => {
    clock += ms;
    if (
      retention &&
      clock >= cutoffAt - retention.retentionMs - 1000 &&
      clock < cutoffAt - retention.retentionMs + 600_000
    ) {
      clock = cutoffAt - retention.retentionMs + 600_000;
    }
    return clock;
  };
  const model = new Map<string, ModelTask>();
  const roots = ['job_', 'job_a', 'Job_', 'resize_', 'r', '_x-'];
  let made = 0;
  /** An id no task held has (a pruned one may come back); some are another's prefix, or differ only in case. */
  const newId = (): string => {
    const taskId = `${pick(roots)}${(made++).toString(36)}${chance(0.3) ? pick(['', 'a', 'A', '_', '-', '0']) : ''}`;
    return model.has(taskId) ? newId() : taskId;
  };
  const inStatus = (...statuses: AsyncTaskStatus[]) =>
    [...model.values()].filter((t) => statuses.includes(t.status)).map((t) => t.taskId);
  let step = 0;
  let op = '';
  const where = () => `seed ${seed}, step ${step} (${op})`;

  const move = async (
    taskId: string,
    status: AsyncTaskStatus,
    options: TransitionOptions,
    modelPatch: Partial<ModelTask> = {},
  ) => {
    const task = model.get(taskId);
    const applies =
      task !== undefined &&
      options.from.includes(task.status) &&
      (options.attempts === undefined || options.attempts === task.attempts);
    const result = await store.transition(taskId, status, options);
    equal(
      result?.status,
      applies ? status : undefined,
      `${where()}: transition of ${taskId} from ${task?.status} to ${status} (from ${options.from.join('|')}) ${applies ? 'applies' : 'is refused'}`,
    );
    if (applies && task) Object.assign(task, { status }, modelPatch);
  };

  /** Ends a task as the engine does: its end time, and a destination call owed or not. */
  const end = (taskId: string, status: AsyncTaskStatus, options: Omit<TransitionOptions, 'patch'>) => {
    const endTime = tick(1);
    const deliveryPending = chance(0.3) ? true : undefined;
    const patch: TaskPatch = { endTime, durationMs: 5, deliveryPending };
    return move(taskId, status, { ...options, patch }, { endTime, deliveryPending });
  };

  /** Which tasks a pruning pass deletes: finished ones past retention, then the oldest past maxTasks. */
  const pruned = (cutoffs: [number, number]): string[] => {
    if (!retention) return [];
    const done = [...model.values()].filter((t) => TERMINAL_STATUSES.has(t.status) && !t.deliveryPending);
    const unclear = done.filter((t) => (t.endTime ?? 0) >= cutoffs[0] && (t.endTime ?? 0) <= cutoffs[1]);
    equal(
      ids(unclear),
      [],
      `${where()}: no task ended at the retention cutoff, which moved while pruning (the run took too long)`,
    );
    const old = done.filter((t) => (t.endTime ?? 0) < cutoffs[0]);
    const kept = done.filter((t) => (t.endTime ?? 0) > cutoffs[1]).sort((a, b) => (a.endTime ?? 0) - (b.endTime ?? 0));
    return [...ids(old), ...ids(kept.slice(0, Math.max(0, kept.length - retention.maxTasks)))];
  };

  // Its own list, not ASYNC_TASK_STATUSES: what the seeded runs do (the regressions they name by
  // seed and step) follows from it, Dequeued added would change them.
  const statuses: AsyncTaskStatus[] = [
    'Enqueued',
    'Running',
    'Retrying',
    'Succeeded',
    'Failed',
    'Stopping',
    'Stopped',
    'Expired',
    'Invalid',
  ];
  const check = async () => {
    const held = [...model.values()];
    for (let q = 0; q < 3; q++) {
      const query: TaskQuery = { sortOrderByTime: chance(0.5) ? 'asc' : 'desc', limit: pick([1, 2, 3, 7, 20, 100]) };
      if (chance(0.4)) query.status = pick(statuses);
      if (chance(0.4)) {
        const id = held.length > 0 && chance(0.8) ? pick(held).taskId : `${pick(roots)}${made + 1}`;
        query.prefix = id.slice(0, Math.floor(random() * (id.length + 1)));
      }
      if (chance(0.3) && held.length > 0) query.startedTimeBegin = pick(held).startedTime + pick([-1, 0, 0, 1]);
      if (chance(0.3) && held.length > 0) query.startedTimeEnd = pick(held).startedTime + pick([-1, 0, 0, 1]);
      if (chance(0.2)) query.includePayload = true;
      const expected = modelList(held, query);
      const listed: [string, AsyncTaskStatus][] = [];
      let limit = query.limit as number;
      let page = await store.list(query);
      for (let pages = 1; ; pages++) {
        const at = `${where()}: list(${JSON.stringify(query)}), page ${pages} of ${limit}`;
        ok(page.tasks.length <= limit, `${at} holds at most its limit of tasks`);
        for (const t of page.tasks) {
          listed.push([t.taskId, t.status]);
          if (query.includePayload) equal(t.payload.body, Buffer.from(t.taskId), `${at}: ${t.taskId}'s body`);
        }
        const shown = expected.slice(0, listed.length).map((t) => [t.taskId, t.status]);
        equal(listed, shown, `${at}: the tasks, their status and their order`);
        const more = listed.length < expected.length;
        equal(
          page.nextToken !== undefined,
          more,
          `${at}: a nextToken ${more ? 'as tasks follow' : 'only while tasks follow'}`,
        );
        if (!page.nextToken || pages > 500) break;
        limit = pick([1, 5, 100]);
        page = await store.list({ ...query, limit, nextToken: page.nextToken });
      }
      equal(
        listed.length,
        expected.length,
        `${where()}: list(${JSON.stringify(query)}) walked to its end lists every task that matches`,
      );
    }
  };

  /** A record as the engine accepts it, its body its id (so that a listed body can be told apart). */
  const accepted = (taskId: string, startedTime: number, delayMs: number) =>
    taskRecord(taskId, {
      startedTime,
      acceptedAt: startedTime,
      events: [{ eventId: 1, status: 'Enqueued', timestamp: startedTime, eventDetail: '' }],
      dueAt: delayMs > 0 ? startedTime + delayMs : undefined,
      payload: { method: 'POST', url: '/work', headers: { 'x-fc-async-task-id': taskId }, body: Buffer.from(taskId) },
    });

  for (step = 1; step <= steps; step++) {
    const roll = random();
    const any = () => pick([...model.keys()]);
    if (roll < 0.24 || model.size === 0) {
      // An accept, delayed or not; now and then of an id held (a 409, or the id of a refused task taken).
      const held = [...model.values()].filter((t) => resendsRefused || t.status !== 'Invalid');
      const known = held.length > 0 && chance(0.08) ? pick(held).taskId : undefined;
      const taskId = known ?? newId();
      op = `accept ${taskId}`;
      const startedTime = tick(pick([0, 0, 1, 2, 7]));
      const takes = known === undefined || model.get(known)?.status === 'Invalid';
      equal(
        await store.insert(accepted(taskId, startedTime, chance(0.2) ? 5000 : 0)),
        takes,
        `${where()}: insert answers ${takes}`,
      );
      if (takes) model.set(taskId, { taskId, status: 'Enqueued', startedTime, attempts: 0 });
    } else if (roll < 0.28) {
      const taskId = newId();
      op = `accept ${taskId}, refused by the queue`;
      const startedTime = tick(1);
      equal(await store.insert(accepted(taskId, startedTime, 0)), true, `${where()}: insert answers true`);
      model.set(taskId, { taskId, status: 'Enqueued', startedTime, attempts: 0 });
      await move(taskId, 'Invalid', { from: ['Enqueued'], patch: { endTime: startedTime } }, { endTime: startedTime });
    } else if (roll < 0.44) {
      const waiting = inStatus('Enqueued', 'Retrying');
      const taskId = waiting.length > 0 && chance(0.9) ? pick(waiting) : any();
      const attempts = (model.get(taskId)?.attempts ?? 0) + 1;
      op = `claim ${taskId}`;
      await move(
        taskId,
        'Running',
        { from: ['Enqueued', 'Retrying'], via: 'Dequeued', patch: { attempts, instanceId: 'i-1' } },
        { attempts },
      );
    } else if (roll < 0.6) {
      const running = inStatus('Running');
      const taskId = running.length > 0 && chance(0.9) ? pick(running) : any();
      const task = model.get(taskId);
      // An attempt outlived by a newer one names its own, older, attempt: refused.
      const attempts = (task?.attempts ?? 0) - (chance(0.1) ? 1 : 0);
      const outcome = pick(['Succeeded', 'Failed', 'Retrying', 'Retrying'] as const);
      op = `attempt ${attempts} of ${taskId} ends ${outcome}`;
      if (outcome === 'Retrying') {
        await move(taskId, 'Retrying', {
          from: ['Running'],
          attempts,
          patch: { dueAt: clock + 1000, alreadyRetriedTimes: attempts },
        });
      } else {
        await end(taskId, outcome, { from: ['Running'], attempts });
      }
    } else if (roll < 0.7) {
      const taskId = any();
      const status = model.get(taskId)?.status;
      op = `stop ${taskId} (${status})`;
      if (status === 'Running') await move(taskId, 'Stopping', { from: ['Running'] });
      else if (status === 'Stopping' || chance(0.8))
        await end(taskId, 'Stopped', { from: ['Enqueued', 'Retrying', 'Stopping'] });
      else await end(taskId, 'Stopped', { from: ['Enqueued', 'Retrying'] });
    } else if (roll < 0.76) {
      const waiting = inStatus('Enqueued', 'Retrying');
      const taskId = waiting.length > 0 && chance(0.8) ? pick(waiting) : any();
      op = `expire ${taskId}`;
      await end(taskId, 'Expired', { from: ['Enqueued', 'Retrying'] });
    } else if (roll < 0.84) {
      const owed = [...model.values()].filter((t) => t.deliveryPending).map((t) => t.taskId);
      if (owed.length === 0) continue;
      const taskId = pick(owed);
      op = `destination of ${taskId} called`;
      await store.update(taskId, { deliveryPending: undefined, destinationStatus: 'Succeeded' });
      (model.get(taskId) as ModelTask).deliveryPending = undefined;
    } else if (roll < 0.9) {
      op = 'a delay';
      tick(Math.floor(random() * 120_000));
    } else if (roll < 0.95) {
      op = 'prune';
      if (!retention) continue;
      const before = Date.now() - retention.retentionMs;
      const deleted = await opened.prune();
      const gone = pruned([before, Date.now() - retention.retentionMs]);
      equal(deleted, gone.length, `${where()}: a pruning pass deletes ${gone.length} tasks (${gone.join(', ')})`);
      for (const taskId of gone) model.delete(taskId);
    } else if (roll < 0.97) {
      // Once, and not with pruning: `prune` is the first store's.
      if (retention || reopened) continue;
      op = 'another store on the same storage';
      reopened = true;
      store = await opened.reopen();
    } else {
      const taskId = any();
      op = `a transition of ${taskId} from statuses it is not in`;
      const from = statuses.filter((s) => s !== model.get(taskId)?.status).slice(0, 3);
      await move(taskId, 'Succeeded', { from, patch: { endTime: tick(1) } });
    }
    await check();
  }
}

/**
 * The TaskStore conformance table: what the engine relies on from every store (compare-and-set,
 * a field patched to `undefined` cleared, paging cursors, `unfinished()`, retention, every field of a
 * record kept). Run each case with your test runner against an {@link OpenTaskStore} of your store;
 * a case rejects with an `AssertionError` naming the behaviour the store broke. What only your store
 * does (a schema upgrade, its keys, commit timing) stays in your own tests.
 *
 * @example
 * ```ts
 * // With vitest (`import { it } from 'vitest'`) or node:test (`import { it } from 'node:test'`):
 * declare const it: (name: string, fn: () => Promise<void>) => void;
 * declare const open: OpenTaskStore;
 * for (const c of taskStoreCases) it(c.name, () => c.run(open));
 * ```
 */
export const taskStoreCases: readonly TaskStoreCase[] = Object.freeze([
  {
    name: 'inserts a task id once and reads it back through another store, binary body included',
    async run(open) {
      const { store, reopen } = await open();
      const r = taskRecord('t_1', { traceContext: { traceparent: TRACEPARENT } });
      equal(await store.insert(r), true, 'insert of a new task id resolves to true');
      equal(await store.insert(taskRecord('t_1')), false, 'insert of a task id held resolves to false');
      const again = await reopen();
      equal(await again.insert(taskRecord('t_1')), false, 'insert of a task id held, through another store, is false');
      const read = await again.get('t_1');
      equal(read, r, 'get through another store reads the record inserted, every field');
      ok(Buffer.isBuffer(read?.payload.body), 'get reads payload.body back as a Buffer');
      equal(await again.get('t_2'), undefined, 'get of an unknown task id is undefined');
    },
  },
  {
    name: 'refuses the id of a task in any status but Invalid, leaving its record as it was',
    async run(open) {
      const { store } = await open();
      for (const status of ASYNC_TASK_STATUSES.filter((s) => s !== 'Invalid')) {
        const r = taskRecord(`t_${status}`, {
          status,
          endTime: TERMINAL_STATUSES.has(status) ? Date.now() : undefined,
        });
        await store.insert(r);
        equal(
          await store.insert(resent(r.taskId, 5000)),
          false,
          `insert of the id of a task ${status} resolves to false`,
        );
        equal(await store.get(r.taskId), r, `a refused insert leaves the ${status} task's record as it was`);
      }
    },
  },
  {
    name: 'takes the id of a task the queue refused (Invalid) for a new task, which replaces it whole',
    replacesInvalid: true,
    async run(open) {
      const { store, reopen } = await open();
      const now = Date.now();
      await store.insert(taskRecord('t_a', { startedTime: now - 3000 }));
      await refused(store, 't_x', now - 2000);
      await store.insert(taskRecord('t_b', { startedTime: now - 1000 }));
      const r = resent('t_x', now);
      equal(await store.insert(r), true, 'insert of the id of an Invalid task resolves to true');
      equal(await store.get('t_x'), r, 'get reads the new record, every field (its events and payload only)');
      equal(await store.insert(resent('t_x', 5000)), false, 'insert of the id again (now Enqueued) resolves to false');
      const listed = await store.list({ sortOrderByTime: 'asc', includePayload: true });
      equal(ids(listed.tasks), ['t_a', 't_b', 't_x'], 'list() shows the new task once, ordered by its own startedTime');
      equal(listed.tasks[2]?.payload.body, Buffer.from([9, 8, 7]), "list() gives the new task's body");
      equal(ids((await store.list({ status: 'Invalid' })).tasks), [], "list({ status: 'Invalid' }) finds no task");
      equal(ids(await store.unfinished()), ['t_a', 't_b', 't_x'], 'unfinished() lists the new task');
      const claimed = await store.transition('t_x', 'Running', { from: ['Enqueued'], via: 'Dequeued' });
      equal(
        claimed?.events.map((e) => [e.eventId, e.status]),
        [
          [1, 'Enqueued'],
          [2, 'Dequeued'],
          [3, 'Running'],
        ],
        "a transition of the new task numbers on from the new task's own events",
      );
      const again = await reopen();
      equal((await again.get('t_x'))?.status, 'Running', 'get through another store reads the new task');
      equal(await again.insert(resent('t_x', 6000)), false, 'insert of the id through another store resolves to false');
    },
  },
  {
    name: 'takes the id of a task the queue refused once in a burst of inserts that names it twice',
    replacesInvalid: true,
    async run(open) {
      const { store } = await open();
      await refused(store, 't_x');
      const first = resent('t_x', 4000);
      const added = await Promise.all([
        store.insert(first),
        store.insert(resent('t_x', 5000)),
        store.insert(taskRecord('t_y')),
      ]);
      equal(added, [true, false, true], 'inserts in one turn: the Invalid id true once, then false; a new id true');
      equal(await store.get('t_x'), first, 'get reads the record of the insert that took the id');
    },
  },
  {
    name: 'transition is a compare-and-set on the status and appends events (with `via` first)',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1'));
      equal(
        await store.transition('t_1', 'Succeeded', { from: ['Running'] }),
        undefined,
        'transition from a status the task is not in is refused (undefined)',
      );
      const running = await store.transition('t_1', 'Running', {
        from: ['Enqueued'],
        via: 'Dequeued',
        patch: { attempts: 1 },
      });
      equal(running?.status, 'Running', 'transition that applies returns the record in its new status');
      equal(
        running?.events.map((e) => [e.eventId, e.status]),
        [
          [1, 'Enqueued'],
          [2, 'Dequeued'],
          [3, 'Running'],
        ],
        'transition appends the `via` event, then the new status, numbered on',
      );
      equal(running?.payload.body, Buffer.from([0, 1, 2, 255]), 'transition returns the record with its body');
      equal((await store.get('t_1'))?.attempts, 1, 'transition writes its patch (get reads `attempts` it set)');
      equal(
        await store.transition('nope', 'Running', { from: ['Enqueued'] }),
        undefined,
        'transition of an unknown task id is undefined',
      );
    },
  },
  {
    name: 'an attempt end applies only for the attempt the task last started (`attempts`)',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1', { status: 'Running', attempts: 2 }));
      equal(
        await store.transition('t_1', 'Failed', { from: ['Running'], attempts: 1 }),
        undefined,
        'transition with `attempts` other than the record has is refused (undefined)',
      );
      equal((await store.get('t_1'))?.status, 'Running', 'a refused transition leaves the status');
      equal(
        (await store.transition('t_1', 'Succeeded', { from: ['Running'], attempts: 2 }))?.status,
        'Succeeded',
        'transition with the `attempts` the record has applies',
      );
    },
  },
  {
    name: 'update sets fields and removes the ones patched to undefined',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1', { status: 'Succeeded', endTime: 1, dueAt: 123, deliveryPending: true }));
      await store.update('t_1', { destinationStatus: 'Succeeded', deliveryPending: undefined, dueAt: undefined });
      const r = (await store.get('t_1')) as TaskRecord;
      equal(r.destinationStatus, 'Succeeded', 'update sets a field');
      // Cleared: left out, or kept as `undefined` (what the engine reads is the same).
      equal(r.deliveryPending, undefined, 'update clears a field patched to undefined (`deliveryPending`)');
      equal(r.dueAt, undefined, 'update clears a field patched to undefined (`dueAt`)');
    },
  },
  {
    name: 'unfinished: tasks not terminal, and finished ones whose destination call is pending, every field but the payload (which a store may omit)',
    async run(open) {
      const { store } = await open();
      const statuses: [string, AsyncTaskStatus, boolean?][] = [
        ['a', 'Enqueued'],
        ['b', 'Running'],
        ['c', 'Retrying'],
        ['d', 'Stopping'],
        ['e', 'Succeeded'],
        ['f', 'Failed', true],
        ['g', 'Stopped'],
        ['h', 'Enqueued'],
      ];
      let t = 1000;
      for (const [id, status, pending] of statuses) {
        await store.insert(taskRecord(id, { status, deliveryPending: pending, startedTime: t++ }));
      }
      const order =
        'unfinished() lists the tasks not terminal and those with deliveryPending, in the order they were accepted (startedTime)';
      equal(ids(await store.unfinished()), ['a', 'b', 'c', 'd', 'f', 'h'], order);
      await store.update('f', { deliveryPending: undefined });
      equal(ids(await store.unfinished()), ['a', 'b', 'c', 'd', 'h'], `${order}; after deliveryPending is cleared`);
      await store.transition('a', 'Stopped', { from: ['Enqueued'], patch: { endTime: 1 } });
      equal(ids(await store.unfinished()), ['b', 'c', 'd', 'h'], `${order}; after a transition that ends a task`);
      // A write that leaves the task unfinished (only its status and record change) lists it under its new status.
      await store.transition('h', 'Running', { from: ['Enqueued'] });
      ok(
        (await store.unfinished()).some((r) => r.taskId === 'h' && r.status === 'Running'),
        'unfinished() lists a task under the status a transition gave it (h Running)',
      );
      equal(
        ids((await store.list({ status: 'Running', sortOrderByTime: 'asc' })).tasks),
        ['b', 'h'],
        "list({ status: 'Running' }) finds a task under the status a transition gave it",
      );
      // Every field as `get` has it, but `payload`: a store may leave it out (recovery reads a
      // task with `get` when it needs the request); one it gives is the whole request.
      for (const task of await store.unfinished()) {
        const { payload, ...rest } = (await store.get(task.taskId)) as TaskRecord;
        const { payload: given, ...head } = task as Partial<TaskRecord>;
        equal(head, rest, `unfinished() gives task ${task.taskId} with every field get() has (but payload)`);
        if (given !== undefined) {
          equal(given, payload, `unfinished() gives task ${task.taskId}'s payload whole, or none`);
        }
      }
    },
  },
  {
    name: 'lists exactly as the in-memory store pages (filters, order, cursor): 60 tasks, pages of 7',
    run: (open) => listsAsMemory(open, 60, [7, 4, 5]),
  },
  {
    name: 'lists exactly as the in-memory store pages (filters, order, cursor): 450 tasks, pages of 100',
    run: (open) => listsAsMemory(open, 450, [100, 30, 40]),
  },
  {
    name: 'pages skip and repeat no task while tasks are added and end between pages',
    run: (open) => pagesWhileChanging(open),
  },
  {
    name: "lists as a model of the engine's operations after each of 300 random steps (seeds 1 and 2)",
    async run(open) {
      for (const seed of [1, 2]) await modelRun(open, { seed, steps: 300 });
    },
  },
  {
    name: "lists as a model of the engine's operations after each of 300 random steps, refused tasks' ids sent again (seed 4)",
    replacesInvalid: true,
    run: (open) => modelRun(open, { seed: 4, steps: 300, resendsRefused: true }),
  },
  {
    name: "lists as a model of the engine's operations after each of 300 random steps with pruning passes (seed 3)",
    usesPrune: true,
    replacesInvalid: true,
    run: (open) =>
      modelRun(open, {
        seed: 3,
        steps: 300,
        resendsRefused: true,
        retention: { maxTasks: 40, retentionMs: 3_600_000 },
      }),
  },
  {
    name: 'lists payload bodies when asked, and without includePayload none or whole ones',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1'));
      // Without includePayload a store may leave the bodies out (empty): the task API then answers none.
      const body = (await store.list({})).tasks[0]?.payload.body;
      ok(
        body?.length === 0 || (Buffer.isBuffer(body) && body.equals(Buffer.from([0, 1, 2, 255]))),
        'list() without includePayload gives each body empty or whole',
      );
      const withPayload = await store.list({ limit: 1, includePayload: true });
      equal(
        withPayload.tasks[0]?.payload.body,
        Buffer.from([0, 1, 2, 255]),
        'list({ includePayload: true }) gives the bodies',
      );
    },
  },
  {
    name: 'rejects a bad nextToken with 400 InvalidArgument',
    async run(open) {
      const { store } = await open();
      const behaviour = "list({ nextToken: 'garbage' }) rejects with an error whose code is InvalidArgument";
      const rejected = await (async () => store.list({ nextToken: 'garbage' }))().then(
        () => assert.fail(`${behaviour} (it resolved)`),
        (error: unknown) => error,
      );
      equal((rejected as { code?: unknown } | undefined)?.code, 'InvalidArgument', behaviour);
    },
  },
  {
    name: 'prunes finished tasks past retentionMs, then the oldest past maxTasks, never unfinished ones',
    usesPrune: true,
    async run(open) {
      const { store, prune } = await open({ maxTasks: 600, retentionMs: 60_000 });
      const now = Date.now();
      let n = 0;
      const add = async (count: number, status: AsyncTaskStatus, endTime: (i: number) => number | undefined) => {
        await Promise.all(
          Array.from({ length: count }, (_, i) =>
            store.insert(taskRecord(`t_${n++}`, { status, endTime: endTime(i) })),
          ),
        );
      };
      await add(700, 'Succeeded', () => now - 120_000); // past retention: all go
      await add(5, 'Enqueued', () => undefined); // unfinished: stay
      await add(800, 'Failed', (i) => now - 50_000 + i); // within retention: the 200 that ended first go
      equal(await prune(), 900, 'a pruning pass deletes the 700 past retentionMs and the 200 oldest past maxTasks');
      const count = async (status?: AsyncTaskStatus) => {
        let total = 0;
        let page = await store.list({ status, limit: 100 });
        for (;;) {
          total += page.tasks.length;
          if (!page.nextToken) return total;
          page = await store.list({ status, limit: 100, nextToken: page.nextToken });
        }
      };
      equal(await count('Succeeded'), 0, 'after pruning, no task past retentionMs is listed');
      equal(await count('Failed'), 600, 'after pruning, maxTasks finished tasks are listed');
      equal(await count(), 605, 'after pruning, the finished tasks kept and every unfinished one are listed');
      equal((await store.unfinished()).length, 5, 'pruning deletes no unfinished task');
      equal(await store.get('t_0'), undefined, 'get of a task pruned past retentionMs is undefined');
      equal(await store.get('t_904'), undefined, 'get of a task pruned past maxTasks (the oldest end) is undefined');
      ok((await store.get('t_905')) !== undefined, 'get of a finished task kept (a later end) reads it');
      equal(await prune(), 0, 'a second pruning pass deletes nothing');
    },
  },
  {
    name: 'prunes a task ended by `transition` by the end time it was given, once its destination call is done',
    usesPrune: true,
    async run(open) {
      const { store, prune } = await open({ maxTasks: 100, retentionMs: 60_000 });
      const now = Date.now();
      for (const id of ['t_old', 't_recent', 't_owed']) await store.insert(taskRecord(id));
      await store.transition('t_old', 'Succeeded', { from: ['Enqueued'], patch: { endTime: now - 120_000 } });
      await store.transition('t_recent', 'Failed', { from: ['Enqueued'], patch: { endTime: now - 1000 } });
      // Ended long ago, its destination call still owed: kept until the call is made.
      const owed = { endTime: now - 120_000, deliveryPending: true };
      await store.transition('t_owed', 'Stopped', { from: ['Enqueued'], patch: owed });
      equal(
        await prune(),
        1,
        'a pruning pass deletes a task `transition` ended past retentionMs (by its endTime), not one with deliveryPending',
      );
      equal(
        ids((await store.list({ sortOrderByTime: 'asc' })).tasks).sort(),
        ['t_owed', 't_recent'],
        'after pruning, the task ended within retentionMs and the one with deliveryPending are listed',
      );
      await store.update('t_owed', { deliveryPending: undefined, destinationStatus: 'Succeeded' });
      equal(await prune(), 1, 'a pruning pass deletes a task past retentionMs once its deliveryPending is cleared');
      equal(
        await store.get('t_owed'),
        undefined,
        'get of the task pruned once its destination call was done is undefined',
      );
      equal((await store.get('t_recent'))?.status, 'Failed', 'pruning keeps a task ended within retentionMs');
    },
  },
  {
    name: "prunes no task that took a refused task's id by the refused task's end time",
    usesPrune: true,
    replacesInvalid: true,
    async run(open) {
      const { store, prune } = await open({ maxTasks: 1, retentionMs: 60_000 });
      const now = Date.now();
      await refused(store, 't_x', now - 120_000);
      await store.insert(resent('t_x', now));
      await store.insert(taskRecord('t_old', { status: 'Succeeded', endTime: now - 1000 }));
      await store.insert(taskRecord('t_new', { status: 'Succeeded', endTime: now - 500 }));
      equal(await prune(), 1, 'a pruning pass deletes only the finished task past maxTasks, not the new one');
      equal((await store.get('t_x'))?.status, 'Enqueued', 'get reads the new task after pruning');
      await store.transition('t_x', 'Succeeded', { from: ['Enqueued'], patch: { endTime: now } });
      equal(await prune(), 1, 'once the new task ends, it counts by its own end time');
      equal(await store.get('t_new'), undefined, 'the finished task that ended before it goes past maxTasks');
      equal((await store.get('t_x'))?.status, 'Succeeded', 'the new task, ended last, is kept');
    },
  },
  {
    name: 'keeps every field of a task, and takes a burst of inserts in one turn with duplicates refused',
    async run(open) {
      const { store, reopen } = await open();
      const full = fullRecord();
      // One turn: the inserts go out together; the id inserted twice is refused the second time.
      const added = await Promise.all([
        store.insert(full),
        store.insert(taskRecord('t_1')),
        store.insert(taskRecord('t_1')),
        store.insert(taskRecord('t_2')),
      ]);
      equal(added, [true, true, false, true], 'inserts in one turn: each new id true, the same id again false');
      await store.update('t_full', { destinationStatus: 'Succeeded' });
      const again = await reopen();
      equal(
        await again.get('t_full'),
        { ...full, destinationStatus: 'Succeeded' },
        'get through another store reads every field of TaskRecord as written',
      );
      equal(
        ids(await again.unfinished()).sort(),
        ['t_1', 't_2', 't_full'],
        'unfinished() through another store lists the tasks inserted unfinished and one with deliveryPending',
      );
    },
  },
] satisfies TaskStoreCase[]);
