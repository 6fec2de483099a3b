import {
  type AsyncTaskStatus,
  pageTasks,
  type RetentionOptions,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
} from '@fc-async/core';
import { expect } from 'vitest';

/** A store under test, on fresh storage of its own; the test file closes it after each case. */
export interface OpenedTaskStore {
  store: TaskStore;
  /**
   * The same tasks through another store: a second instance on the same storage (distributed),
   * or the storage reopened after closing `store` (persistent). Use `store` no more after it.
   */
  reopen(): Promise<TaskStore>;
  /** One pruning pass with the retention `open` was given; resolves to the number of tasks deleted. */
  prune(): Promise<number>;
}

/** Opens a store on fresh storage, with `retention` for its pruning. */
export type OpenTaskStore = (retention?: RetentionOptions) => Promise<OpenedTaskStore>;

/** One case of the TaskStore conformance table. */
export interface TaskStoreCase {
  name: string;
  run(open: OpenTaskStore): Promise<void>;
}

/** A task record as the engine builds it, with overrides. */
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

/**
 * `count` tasks listed against `pageTasks` (the in-memory store) for every query: whole pages of
 * `limit`, `Succeeded` ones in pages of `succeeded`, `resize_` ones in pages of `resize`.
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
      expect(actual.tasks.map((t) => t.taskId)).toEqual(expected.tasks.map((t) => t.taskId));
      expect(actual.nextToken).toBe(expected.nextToken);
      if (!expected.nextToken) break;
      pages++;
      expected = pageTasks(all, { ...query, nextToken: expected.nextToken });
      actual = await store.list({ ...query, nextToken: actual.nextToken });
    }
    if (query.limit === limit) expect(pages).toBeGreaterThan(3);
  }
}

/**
 * The TaskStore conformance table: what the engine relies on from every store, run by each
 * durable store's tests against its own `open` (`it.each(taskStoreCases)('$name', (c) => c.run(open))`).
 * What only one store does (a schema upgrade, Redis keys, commit timing) stays in its own tests.
 */
export const taskStoreCases: TaskStoreCase[] = [
  {
    name: 'inserts a task id once and reads it back through another store, binary body included',
    async run(open) {
      const { store, reopen } = await open();
      const r = taskRecord('t_1', { traceContext: { traceparent: TRACEPARENT } });
      expect(await store.insert(r)).toBe(true);
      expect(await store.insert(taskRecord('t_1'))).toBe(false);
      const again = await reopen();
      expect(await again.insert(taskRecord('t_1'))).toBe(false);
      const read = await again.get('t_1');
      expect(read).toEqual(r);
      expect(Buffer.isBuffer(read?.payload.body)).toBe(true);
      expect(await again.get('t_2')).toBeUndefined();
    },
  },
  {
    name: 'transition is a compare-and-set on the status and appends events (with `via` first)',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1'));
      expect(await store.transition('t_1', 'Succeeded', { from: ['Running'] })).toBeUndefined();
      const running = await store.transition('t_1', 'Running', {
        from: ['Enqueued'],
        via: 'Dequeued',
        patch: { attempts: 1 },
      });
      expect(running?.status).toBe('Running');
      expect(running?.events.map((e) => [e.eventId, e.status])).toEqual([
        [1, 'Enqueued'],
        [2, 'Dequeued'],
        [3, 'Running'],
      ]);
      expect(running?.payload.body).toEqual(Buffer.from([0, 1, 2, 255]));
      expect((await store.get('t_1'))?.attempts).toBe(1);
      expect(await store.transition('nope', 'Running', { from: ['Enqueued'] })).toBeUndefined();
    },
  },
  {
    name: 'an attempt end applies only for the attempt the task last started (`attempts`)',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1', { status: 'Running', attempts: 2 }));
      expect(await store.transition('t_1', 'Failed', { from: ['Running'], attempts: 1 })).toBeUndefined();
      expect((await store.get('t_1'))?.status).toBe('Running');
      expect((await store.transition('t_1', 'Succeeded', { from: ['Running'], attempts: 2 }))?.status).toBe(
        'Succeeded',
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
      expect(r.destinationStatus).toBe('Succeeded');
      expect('deliveryPending' in r).toBe(false);
      expect('dueAt' in r).toBe(false);
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
      expect(ids(await store.unfinished())).toEqual(['a', 'b', 'c', 'd', 'f', 'h']);
      await store.update('f', { deliveryPending: undefined });
      expect(ids(await store.unfinished())).toEqual(['a', 'b', 'c', 'd', 'h']);
      await store.transition('a', 'Stopped', { from: ['Enqueued'], patch: { endTime: 1 } });
      expect(ids(await store.unfinished())).toEqual(['b', 'c', 'd', 'h']);
      // A write that leaves the task unfinished (only its status and record change) lists it under its new status.
      await store.transition('h', 'Running', { from: ['Enqueued'] });
      expect((await store.unfinished()).map((r) => [r.taskId, r.status])).toContainEqual(['h', 'Running']);
      expect(ids((await store.list({ status: 'Running', sortOrderByTime: 'asc' })).tasks)).toEqual(['b', 'h']);
      // Every field as `get` has it, but `payload`: a store may leave it out (recovery reads a
      // task with `get` when it needs the request); one it gives is the whole request.
      for (const task of await store.unfinished()) {
        const { payload, ...rest } = (await store.get(task.taskId)) as TaskRecord;
        const { payload: given, ...head } = task as Partial<TaskRecord>;
        expect(head).toEqual(rest);
        if (given !== undefined) expect(given).toEqual(payload);
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
    name: 'lists payload bodies only when asked',
    async run(open) {
      const { store } = await open();
      await store.insert(taskRecord('t_1'));
      expect((await store.list({})).tasks[0]?.payload.body.length).toBe(0);
      const withPayload = await store.list({ limit: 1, includePayload: true });
      expect(withPayload.tasks[0]?.payload.body).toEqual(Buffer.from([0, 1, 2, 255]));
    },
  },
  {
    name: 'rejects a bad nextToken with 400 InvalidArgument',
    async run(open) {
      const { store } = await open();
      await expect(async () => store.list({ nextToken: 'garbage' })).rejects.toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    },
  },
  {
    name: 'prunes finished tasks past retentionMs, then the oldest past maxTasks, never unfinished ones',
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
      expect(await prune()).toBe(900);
      const count = async (status?: AsyncTaskStatus) => {
        let total = 0;
        let page = await store.list({ status, limit: 100 });
        for (;;) {
          total += page.tasks.length;
          if (!page.nextToken) return total;
          page = await store.list({ status, limit: 100, nextToken: page.nextToken });
        }
      };
      expect(await count('Succeeded')).toBe(0);
      expect(await count('Failed')).toBe(600);
      expect(await count()).toBe(605);
      expect(await store.unfinished()).toHaveLength(5);
      expect(await store.get('t_0')).toBeUndefined();
      expect(await store.get('t_904')).toBeUndefined();
      expect(await store.get('t_905')).toBeDefined();
      expect(await prune()).toBe(0);
    },
  },
  {
    name: 'prunes a task ended by `transition` by the end time it was given, once its destination call is done',
    async run(open) {
      const { store, prune } = await open({ maxTasks: 100, retentionMs: 60_000 });
      const now = Date.now();
      for (const id of ['t_old', 't_recent', 't_owed']) await store.insert(taskRecord(id));
      await store.transition('t_old', 'Succeeded', { from: ['Enqueued'], patch: { endTime: now - 120_000 } });
      await store.transition('t_recent', 'Failed', { from: ['Enqueued'], patch: { endTime: now - 1000 } });
      // Ended long ago, its destination call still owed: kept until the call is made.
      const owed = { endTime: now - 120_000, deliveryPending: true };
      await store.transition('t_owed', 'Stopped', { from: ['Enqueued'], patch: owed });
      expect(await prune()).toBe(1);
      expect(ids((await store.list({ sortOrderByTime: 'asc' })).tasks).sort()).toEqual(['t_owed', 't_recent']);
      await store.update('t_owed', { deliveryPending: undefined, destinationStatus: 'Succeeded' });
      expect(await prune()).toBe(1);
      expect(await store.get('t_owed')).toBeUndefined();
      expect((await store.get('t_recent'))?.status).toBe('Failed');
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
      expect(added).toEqual([true, true, false, true]);
      await store.update('t_full', { destinationStatus: 'Succeeded' });
      const again = await reopen();
      expect(await again.get('t_full')).toEqual({ ...full, destinationStatus: 'Succeeded' });
      expect(ids(await again.unfinished()).sort()).toEqual(['t_1', 't_2', 't_full']);
    },
  },
];
