/**
 * A backend of one's own, written from the TaskStore / QueueDriver contract: every method may
 * answer synchronously, a throw included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AsyncBackend,
  FcAsyncError,
  getInvocation,
  MemoryTaskStore,
  PQueueDriver,
  type QueueDriver,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  type TransitionOptions,
} from '../src/index.js';
import { asyncEvent, context, json, ok, setup, until } from './helpers.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);
afterEach(() => {
  unhandled.length = 0;
});

/** A shared queue (a database table other instances poll) that refuses jobs synchronously while `down`. */
function sharedBackend(state: { down: boolean; insertDown?: boolean }) {
  const rows = new MemoryTaskStore();
  const store: TaskStore = {
    // The database's accept: refused while it is away.
    insert: (record) =>
      state.insertDown
        ? Promise.reject(new FcAsyncError('DatabaseUnavailable', 'the database is away', { statusCode: 503 }))
        : Promise.resolve(rows.insert(record)),
    get: (taskId) => rows.get(taskId),
    transition: (taskId, status, options) => rows.transition(taskId, status, options),
    update: (taskId, patch) => rows.update(taskId, patch),
    list: (query) => rows.list(query),
    unfinished: () => rows.unfinished(),
  };
  const local = new PQueueDriver(1);
  const queue: QueueDriver = {
    shared: true,
    start: (process) => local.start(process),
    enqueue(job, delayMs) {
      if (state.down) throw new FcAsyncError('QueueUnavailable', 'the queue table is locked', { statusCode: 503 });
      return local.enqueue(job, delayMs);
    },
    cancel: (taskId) => local.cancel(taskId),
    pending: () => local.pending(),
    running: () => local.running(),
    close: () => local.close(),
  };
  const backend: AsyncBackend = { name: 'table', persistent: true, create: () => ({ store, queue }) };
  return { backend, store };
}

describe('a shared queue whose enqueue throws synchronously', () => {
  it('records the task it refused Invalid and answers 503, as a rejected enqueue does', async () => {
    const state = { down: true };
    const { backend, store } = sharedBackend(state);
    const { handler, successes } = setup(ok, { backend });
    const refused = await handler(asyncEvent({ taskId: 'unqueued' }), context);
    expect([refused.statusCode, (json(refused) as { code: string }).code]).toEqual([503, 'ServiceUnavailable']);
    // Not left Enqueued with no job: no instance would ever run it, and its id would answer 409.
    expect((await store.get('unqueued'))?.status).toBe('Invalid');
    state.down = false;
    expect((await handler(asyncEvent({ taskId: 'queued' }), context)).statusCode).toBe(202);
    // Sent again under its id, the refused task is taken this time (its job added in the same round trip) and runs.
    const again = await handler(asyncEvent({ taskId: 'unqueued' }), context);
    expect(again.statusCode).toBe(202);
    // A shared queue's drain() does not wait for a job still waiting: the test looks until it ran.
    const requestId = again.headers?.['x-fc-request-id'];
    await until('the task sent again to run', () => successes.some((r) => r.requestContext.requestId === requestId));
    await handler.drain();
    expect(successes.filter((r) => r.requestContext.requestId === requestId)).toHaveLength(1);
    expect((await store.get('unqueued'))?.status).toBe('Succeeded');
    await handler.close({ timeoutMs: 1000 });
  });

  it("answers the store's refusal when the insert is refused too, with no unhandled rejection", async () => {
    const { backend } = sharedBackend({ down: true, insertDown: true });
    const { handler } = setup(ok, { backend });
    const refused = await handler(asyncEvent({ taskId: 'both_down' }), context);
    expect([refused.statusCode, (json(refused) as { code: string }).code]).toEqual([503, 'DatabaseUnavailable']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    await handler.close({ timeoutMs: 1000 });
  });
});

/** A store of the contract before an Invalid record could be replaced: any known id is refused. */
class RefusesInvalidIds extends MemoryTaskStore {
  override insert(record: TaskRecord): boolean {
    return this.get(record.taskId) === undefined && super.insert(record);
  }
}

/** The in-process queue, refusing every job while `state.refuse`; `store` as given. */
function refusingBackend(state: { refuse: boolean }, store: TaskStore = new MemoryTaskStore()): AsyncBackend {
  return {
    name: 'table',
    persistent: false,
    create(ctx) {
      const queue = new PQueueDriver(ctx.concurrency);
      const enqueue = queue.enqueue.bind(queue);
      queue.enqueue = (job, delayMs) => {
        if (state.refuse) throw new FcAsyncError('QueueUnavailable', 'the queue table is locked', { statusCode: 503 });
        return enqueue(job, delayMs);
      };
      return { store, queue };
    },
  };
}

describe('a queue that refuses a task', () => {
  it('answers 503, and the same task id sent again is accepted (202) and runs once', async () => {
    const state = { refuse: true };
    const { handler, successes } = setup(ok, { backend: refusingBackend(state) });
    const refused = await handler(asyncEvent({ taskId: 'export_7' }), context);
    expect([refused.statusCode, refused.headers?.['retry-after'], json(refused)]).toEqual([
      503,
      '1',
      { code: 'ServiceUnavailable', message: 'The task could not be queued: export_7 never ran, send it again later' },
    ]);
    expect((await handler.tasks.get('export_7'))?.status).toBe('Invalid');
    state.refuse = false;
    // The caller retries after the 503 with the same id, as callers do: its first send was not accepted.
    const again = await handler(asyncEvent({ taskId: 'export_7' }), context);
    expect(again.statusCode).toBe(202);
    const requestId = again.headers?.['x-fc-request-id'];
    await handler.drain();
    expect(successes.map((r) => r.requestContext.requestId)).toEqual([requestId]);
    const task = await handler.tasks.get('export_7');
    expect([task?.status, task?.requestId, task?.events.map((e) => e.status)]).toEqual([
      'Succeeded',
      requestId,
      ['Enqueued', 'Dequeued', 'Running', 'Succeeded'],
    ]);
    // Taken now: a third send is a duplicate.
    expect((await handler(asyncEvent({ taskId: 'export_7' }), context)).statusCode).toBe(409);
    // A task id the caller did not choose (the request id) is new on every send: nothing to say.
    state.refuse = true;
    const unnamed = await handler(asyncEvent({}), context);
    expect((json(unnamed) as { message: string }).message).toBe('The task could not be queued');
    await handler.close({ timeoutMs: 1000 });
  });

  it('with a store that does not replace an Invalid record, the send again answers 409 saying the task never ran', async () => {
    const state = { refuse: true };
    const { handler, successes } = setup(ok, { backend: refusingBackend(state, new RefusesInvalidIds()) });
    expect((await handler(asyncEvent({ taskId: 'export_7' }), context)).statusCode).toBe(503);
    state.refuse = false;
    const again = await handler(asyncEvent({ taskId: 'export_7' }), context);
    expect([again.statusCode, json(again)]).toEqual([
      409,
      {
        code: 'AsyncTaskAlreadyExists',
        message: 'An async task with id export_7 already exists: it could not be queued and never ran (Invalid)',
      },
    ]);
    expect((await handler(asyncEvent({ taskId: 'export_7b' }), context)).statusCode).toBe(202);
    await handler.drain();
    expect(successes).toHaveLength(1);
    expect((await handler.tasks.get('export_7'))?.status).toBe('Invalid');
    await handler.close({ timeoutMs: 1000 });
  });
});

/** Freezes a record and its events (the payload's Buffer cannot be frozen, and is shared). */
function frozen<T extends Omit<TaskRecord, 'payload'>>(record: T | undefined): T | undefined {
  if (!record) return undefined;
  const copy = { ...record, events: record.events.map((e) => Object.freeze({ ...e })) };
  Object.freeze(copy.events);
  return Object.freeze(copy);
}

/**
 * A store that holds the engine's records (frozen, as if kept) and hands out frozen ones (as a store keeping its own
 * objects may, docs/async.md "A backend of your own"): the engine changes neither.
 */
class FrozenStore implements TaskStore {
  constructor(private readonly inner = new MemoryTaskStore()) {}
  insert(record: TaskRecord) {
    const kept = this.inner.insert({ ...record, events: record.events.slice() });
    // The engine's own object, as a store keeping it would hold it: a change of it now throws.
    Object.freeze(record.events);
    Object.freeze(record);
    return kept;
  }
  get(taskId: string) {
    return frozen(this.inner.get(taskId));
  }
  transition(taskId: string, status: TaskRecord['status'], options: TransitionOptions) {
    return frozen(this.inner.transition(taskId, status, options));
  }
  update(taskId: string, patch: TaskPatch) {
    this.inner.update(taskId, patch);
  }
  list(query: TaskQuery) {
    const page = this.inner.list(query);
    return { ...page, tasks: page.tasks.map((t) => frozen(t) as TaskRecord) };
  }
  unfinished() {
    return this.inner.unfinished().map((r) => frozen(r) as TaskRecord);
  }
}

describe('records the store keeps or hands out', () => {
  const app = (req: IncomingMessage, res: ServerResponse) => {
    res.statusCode = req.url === '/fail' ? 500 : 200;
    if (req.url !== '/slow') return void res.end('done');
    const late = setTimeout(() => res.end('late'), 10_000);
    getInvocation(req)?.signal.addEventListener('abort', () => {
      clearTimeout(late);
      res.end('stopped');
    });
  };

  it.each([false, true])('are never changed by the engine (persistent: %s)', async (persistent) => {
    const rows = new MemoryTaskStore(); // what a database would keep across a restart
    const backend: AsyncBackend = {
      name: 'frozen',
      persistent,
      create: (ctx) => ({ store: new FrozenStore(rows), queue: new PQueueDriver(ctx.concurrency) }),
    };
    const { handler, successes, failures, logger } = setup(app, { backend, maxAsyncRetryAttempts: 1 });
    for (const [taskId, path, delay] of [
      ['ok', '/', ''],
      ['fails', '/fail', ''],
      ['slow', '/slow', ''],
      ['later', '/', '30'],
      ['kept', '/', '1'],
    ]) {
      expect((await handler(asyncEvent({ taskId, path, delay }), context)).statusCode).toBe(202);
    }
    await until('the slow task to run', async () => (await handler.tasks.get('slow'))?.status === 'Running');
    await handler.tasks.stop('slow');
    await handler.tasks.stop('later');
    await until('the failing task to end Failed', async () => (await handler.tasks.get('fails'))?.status === 'Failed');
    // 'kept' is still delayed: a persistent backend keeps it for the next start, memory() stops it.
    await handler.close({ timeoutMs: 0 });
    const next = setup(app, { backend });
    await next.handler.engine?.whenReady();
    await next.handler.drain();
    const { tasks } = await next.handler.tasks.list({ sortOrderByTime: 'asc' });
    expect(tasks.map((t) => `${t.taskId} ${t.status}`).sort()).toEqual([
      'fails Failed',
      persistent ? 'kept Succeeded' : 'kept Stopped',
      'later Stopped',
      'ok Succeeded',
      'slow Stopped',
    ]);
    expect([successes.length + next.successes.length, failures.length]).toEqual(persistent ? [2, 3] : [1, 4]);
    expect([...logger.entries, ...next.logger.entries].filter((e) => e.level === 'error')).toEqual([]);
    await next.handler.close({ timeoutMs: 1000 });
  });
});
