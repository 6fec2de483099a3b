/**
 * A backend that fails to start (Redis down when the instance starts) is tried again on demand:
 * the instance answers 503 meanwhile and works once a try succeeds, instead of answering 503
 * for good while its sync routes look healthy.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AsyncBackend, BackendContext, QueueDriver, TaskStore } from '../src/async/backend.js';
import { FcAsyncError, type FcHttpResult, MemoryTaskStore, PQueueDriver, silentLogger } from '../src/index.js';
import { asyncEvent, context, deferred, event, json, ok, setup } from './helpers.js';

/** Past the wait between two tries of a failed start. */
const RETRY_MS = 1000;

type Made = { store: TaskStore; queue: QueueDriver };

/** A backend whose n-th create() does what `tryNo(n)` says: `'fail'`, or what it returns. */
function backendOf(
  tryNo: (n: number, context: BackendContext) => 'fail' | Made | Promise<Made>,
  persistent = false,
): AsyncBackend & { creates: number } {
  const backend = {
    name: 'flaky',
    persistent,
    creates: 0,
    async create(ctx: BackendContext) {
      backend.creates++;
      const outcome = await tryNo(backend.creates, ctx);
      if (outcome === 'fail') {
        throw new FcAsyncError('RedisUnavailable', 'Redis did not answer within 300 ms', { statusCode: 503 });
      }
      return outcome;
    },
  };
  return backend;
}

const fresh = (ctx: BackendContext): Made => ({
  store: new MemoryTaskStore(),
  queue: new PQueueDriver(ctx.concurrency),
});

const answer = (result: FcHttpResult) => ({
  status: result.statusCode,
  code: result.statusCode === 202 ? undefined : (json(result) as { code: string }).code,
});

beforeEach(() => {
  // Only the clock the wait between tries reads: timers and Date stay real.
  vi.useFakeTimers({ toFake: ['performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('a create() that throws at once', () => {
  it('fails the start as a rejection does (503, tried again), and throws only a bad option', async () => {
    let tries = 0;
    const backend: AsyncBackend = {
      name: 'postgres',
      persistent: false,
      create(ctx) {
        tries++;
        if (tries === 1) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        return fresh(ctx);
      },
    };
    const { handler, logger } = setup(ok, { backend });
    expect(answer(await handler(asyncEvent({ taskId: 'down' }), context))).toEqual({
      status: 503,
      code: 'BackendUnavailable',
    });
    expect((await handler(event({}), context)).statusCode).toBe(200); // sync routes served meanwhile
    expect(logger.entries.some((e) => e.message === 'async backend failed to start')).toBe(true);
    vi.advanceTimersByTime(RETRY_MS);
    expect(answer(await handler(asyncEvent({ taskId: 'up' }), context)).status).toBe(202);
    await handler.close();
    const badOption: AsyncBackend = {
      name: 'postgres',
      persistent: false,
      create() {
        throw new TypeError('Expected `poolSize` to be a number');
      },
    };
    expect(() => setup(ok, { backend: badOption })).toThrow('Expected `poolSize` to be a number');
  });
});

describe('the log line of a backend that fails to start', () => {
  it("gives an fc-async error's code, message and cause, not a stack of fc-async's frames", async () => {
    const backend: AsyncBackend = {
      name: 'redis',
      persistent: false,
      async create() {
        throw new FcAsyncError('RedisUnavailable', 'Redis did not answer within 10000 ms', {
          statusCode: 503,
          cause: new Error('connect ECONNREFUSED 127.0.0.1:1'),
        });
      },
    };
    const { handler, logger } = setup(ok, { backend });
    expect(answer(await handler(asyncEvent({ taskId: 'down' }), context)).status).toBe(503);
    const line = logger.entries.find((e) => e.message === 'async backend failed to start');
    expect(line?.fields).toEqual({
      backend: 'redis',
      tries: 1,
      code: 'RedisUnavailable',
      // Not `message`: a JSON log line's own message field would be overwritten by it.
      reason: 'Redis did not answer within 10000 ms',
      cause: 'connect ECONNREFUSED 127.0.0.1:1',
    });
    await handler.close();
  });
});

describe('a backend that fails to start, then starts', () => {
  it('answers 503 with the backend error until a later demand starts it; then 202, and the task runs', async () => {
    const backend = backendOf((n, ctx) => (n === 1 ? 'fail' : fresh(ctx)));
    const { handler, successes, logger } = setup(ok, { backend });
    expect(answer(await handler(asyncEvent({ taskId: 't_1' }), context))).toEqual({
      status: 503,
      code: 'RedisUnavailable',
    });
    await expect(handler.tasks.get('t_1')).rejects.toMatchObject({ code: 'RedisUnavailable', statusCode: 503 });
    expect(backend.creates).toBe(1);

    vi.advanceTimersByTime(RETRY_MS);
    // Nothing was accepted before: the same task id is taken now.
    expect(answer(await handler(asyncEvent({ taskId: 't_1' }), context))).toEqual({ status: 202, code: undefined });
    expect(backend.creates).toBe(2);
    await handler.drain();
    expect((await handler.tasks.get('t_1'))?.status).toBe('Succeeded');
    expect(successes.map((r) => r.requestContext.requestId)).toHaveLength(1);
    expect(
      logger.entries.filter((e) => e.message.startsWith('async backend')).map((e) => [e.message, e.fields?.tries]),
    ).toEqual([
      ['async backend failed to start', 1],
      ['async backend started', 2],
    ]);
    await handler.close();
  });

  it('a persistent backend recovers the unfinished tasks when a later try starts it, as on a normal start', async () => {
    const store = new MemoryTaskStore();
    const before = setup(ok, {
      backend: backendOf((_n, ctx) => ({ store, queue: new PQueueDriver(ctx.concurrency) }), true),
    });
    expect((await before.handler(asyncEvent({ taskId: 'left', delay: '1' }), context)).statusCode).toBe(202);
    // A persistent backend keeps the delayed task for the next start.
    await before.handler.close({ timeoutMs: 10 });
    expect(store.unfinished().map((r) => [r.taskId, r.status])).toEqual([['left', 'Enqueued']]);

    const backend = backendOf(
      (n, ctx) => (n === 1 ? 'fail' : { store, queue: new PQueueDriver(ctx.concurrency) }),
      true,
    );
    const { handler, successes } = setup(ok, { backend });
    await expect(handler.engine?.whenReady()).rejects.toMatchObject({ code: 'RedisUnavailable' });
    vi.advanceTimersByTime(RETRY_MS);
    await handler.engine?.whenReady();
    await handler.drain();
    expect((await handler.tasks.get('left'))?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
    await handler.close();
  });

  it('a try that fails half-way through recovery leaves no task counted twice: the next one drains', async () => {
    const store = new MemoryTaskStore();
    const before = setup(ok, {
      backend: backendOf((_n, ctx) => ({ store, queue: new PQueueDriver(ctx.concurrency) }), true),
    });
    for (const taskId of ['kept_1', 'kept_2']) {
      expect((await before.handler(asyncEvent({ taskId, delay: '1' }), context)).statusCode).toBe(202);
    }
    await before.handler.close({ timeoutMs: 10 });

    const backend = backendOf((n, ctx) => {
      const queue = new PQueueDriver(ctx.concurrency);
      if (n === 1) {
        // The second task's requeue fails: this start fails after counting the first.
        let enqueued = 0;
        const enqueue = queue.enqueue.bind(queue);
        queue.enqueue = (job, delayMs) => {
          if (++enqueued === 2) throw new Error('the queue refused the job');
          return enqueue(job, delayMs);
        };
      }
      return { store, queue };
    }, true);
    const { handler, successes } = setup(ok, { backend });
    await expect(handler.engine?.whenReady()).rejects.toThrow('the queue refused the job');
    vi.advanceTimersByTime(RETRY_MS);
    await handler.engine?.whenReady();
    await handler.drain();
    expect(successes.map((r) => r.requestContext.requestId).length).toBe(2);
    await handler.close();
  });

  it('releases what a try opened when it fails past create(), so the next try can open it again', async () => {
    const closed: number[] = [];
    const backend = backendOf((n, ctx) => {
      const made = fresh(ctx);
      const close = made.queue.close.bind(made.queue);
      made.queue.close = () => {
        closed.push(n);
        return close();
      };
      if (n === 1) {
        made.queue.start = () => {
          throw new Error('the worker could not start');
        };
      }
      return made;
    });
    const { handler } = setup(ok, { backend });
    expect(answer(await handler(asyncEvent(), context))).toEqual({ status: 503, code: 'BackendUnavailable' });
    expect(closed).toEqual([1]);
    vi.advanceTimersByTime(RETRY_MS);
    expect(answer(await handler(asyncEvent(), context))).toEqual({ status: 202, code: undefined });
    await handler.close();
    expect(closed).toEqual([1, 2]);
  });
});

describe('a backend that never starts', () => {
  it('tries again at most once a second however many requests come, and close() returns', async () => {
    const backend = backendOf(() => 'fail');
    const { handler, logger } = setup(ok, { backend });
    const flood = () => Promise.all(Array.from({ length: 20 }, () => handler(asyncEvent(), context)));
    for (const result of await flood()) expect(answer(result)).toEqual({ status: 503, code: 'RedisUnavailable' });
    expect(backend.creates).toBe(1);

    vi.advanceTimersByTime(RETRY_MS - 1);
    await expect(handler.tasks.list()).rejects.toMatchObject({ code: 'RedisUnavailable' });
    expect(backend.creates).toBe(1);
    vi.advanceTimersByTime(1);
    for (const result of await flood()) expect(answer(result)).toEqual({ status: 503, code: 'RedisUnavailable' });
    await expect(handler.engine?.whenReady()).rejects.toMatchObject({ code: 'RedisUnavailable' });
    expect(backend.creates).toBe(2);

    await handler.close({ timeoutMs: 100 });
    vi.advanceTimersByTime(RETRY_MS);
    // Closed: no more tries.
    expect(answer(await handler(asyncEvent(), context))).toEqual({ status: 503, code: 'ServiceUnavailable' });
    await expect(handler.engine?.whenReady()).rejects.toMatchObject({ code: 'RedisUnavailable' });
    expect(backend.creates).toBe(2);
    expect(logger.entries.filter((e) => e.message === 'async backend failed to start')).toHaveLength(2);
  });

  it('close() during a try waits for that try only, and releases what it opened', async () => {
    const gate = deferred<Made>();
    const backend = backendOf((n) => (n === 1 ? 'fail' : gate.promise));
    const { handler } = setup(ok, { backend });
    await expect(handler.engine?.whenReady()).rejects.toMatchObject({ code: 'RedisUnavailable' });
    vi.advanceTimersByTime(RETRY_MS);
    const waiting = handler.tasks.list();
    const closing = handler.close({ timeoutMs: 100 });
    const made = fresh({ concurrency: 1, logger: silentLogger });
    const closeQueue = vi.spyOn(made.queue, 'close');
    gate.resolve(made);
    await closing;
    expect(closeQueue).toHaveBeenCalledTimes(1);
    await expect(waiting).resolves.toMatchObject({ tasks: [] });
    expect(backend.creates).toBe(2);
  });
});
