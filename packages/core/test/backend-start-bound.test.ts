/**
 * A backend whose create() never settles (a database that never answers a connect) does not hold
 * every async request for ever: its start is bounded (`AsyncBackend.startTimeoutMs`, 30 s by
 * default), requests answer 503 `BackendUnavailable` with `Retry-After`, a later one tries again,
 * and what a create() settling past the bound makes is closed, never used.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AsyncBackend, BackendContext, QueueDriver, TaskStore } from '../src/async/backend.js';
import { type FcHttpResult, getInvocation, MemoryTaskStore, PQueueDriver } from '../src/index.js';
import { asyncEvent, context, deferred, json, type Listener, ok, setup, tick } from './helpers.js';

type Made = { store: TaskStore; queue: QueueDriver };

/** Past the wait between two tries of a failed start. */
const RETRY_MS = 1000;

/** memory's store and queue, with what was done to them. */
function fresh(ctx: BackendContext) {
  const store = new MemoryTaskStore();
  const queue = new PQueueDriver(ctx.concurrency);
  const seen = { started: false, queueClosed: false, storeClosed: false, inserts: 0 };
  const start = queue.start.bind(queue);
  queue.start = (process) => {
    seen.started = true;
    return start(process);
  };
  const closeQueue = queue.close.bind(queue);
  queue.close = () => {
    seen.queueClosed = true;
    return closeQueue();
  };
  (store as TaskStore).close = () => {
    seen.storeClosed = true;
  };
  const insert = store.insert.bind(store);
  store.insert = (record) => {
    seen.inserts++;
    return insert(record);
  };
  return { made: { store, queue } as Made, seen };
}

/** A backend whose n-th create() returns `tryNo(n)`; never settling when that is `'hang'`. */
function backendOf(tryNo: (n: number) => 'hang' | Promise<Made> | Made, startTimeoutMs?: number) {
  const backend: AsyncBackend & { creates: number } = {
    name: 'postgres',
    persistent: false,
    creates: 0,
    ...(startTimeoutMs === undefined ? {} : { startTimeoutMs }),
    create() {
      backend.creates++;
      const outcome = tryNo(backend.creates);
      return outcome === 'hang' ? new Promise<Made>(() => {}) : outcome;
    },
  };
  return backend;
}

const answer = (result: FcHttpResult) => ({
  status: result.statusCode,
  code: result.statusCode === 202 ? undefined : (json(result) as { code: string }).code,
  retryAfter: result.headers?.['retry-after'],
});

afterEach(() => {
  vi.useRealTimers();
});

describe('a backend whose create() never settles', () => {
  it('answers 503 BackendUnavailable with Retry-After past its bound, logs it once, and tries again on a later request', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const ctx = { concurrency: 2 } as BackendContext;
    const second = fresh(ctx);
    const backend = backendOf((n) => (n === 1 ? 'hang' : second.made), 100);
    const { handler, logger } = setup(ok, { backend });
    expect(answer(await handler(asyncEvent({ taskId: 'held' }), context))).toEqual({
      status: 503,
      code: 'BackendUnavailable',
      retryAfter: '1',
    });
    await expect(handler.tasks.get('held')).rejects.toMatchObject({ code: 'BackendUnavailable', statusCode: 503 });
    // Within a second of the failed try: the same answer, no new try, no new line.
    expect(answer(await handler(asyncEvent({ taskId: 'held' }), context)).status).toBe(503);
    expect(backend.creates).toBe(1);
    const failed = logger.entries.filter((e) => e.message === 'async backend failed to start');
    expect(failed.map((e) => [e.level, e.fields?.code, e.fields?.reason])).toEqual([
      ['error', 'BackendUnavailable', 'The async backend did not start within 100 ms'],
    ]);
    vi.advanceTimersByTime(RETRY_MS);
    expect(answer(await handler(asyncEvent({ taskId: 'held' }), context)).status).toBe(202);
    expect(backend.creates).toBe(2);
    await handler.drain();
    expect((await handler.tasks.get('held'))?.status).toBe('Succeeded');
    await handler.close();
  });

  it('is bounded at 30 s when the backend names no bound', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const backend = backendOf(() => 'hang');
    const { handler } = setup(ok, { backend });
    let result: FcHttpResult | undefined;
    const answered = handler(asyncEvent({ taskId: 'slow' }), context).then((r) => {
      result = r;
    });
    await vi.advanceTimersByTimeAsync(29_999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await answered;
    expect(answer(result as FcHttpResult)).toEqual({ status: 503, code: 'BackendUnavailable', retryAfter: '1' });
    vi.useRealTimers();
    await handler.close({ timeoutMs: 0 });
  });

  it('closes what a create() settling past its bound makes, never uses it, and starts the next try afresh', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const ctx = { concurrency: 2 } as BackendContext;
    const late = deferred<Made>();
    const first = fresh(ctx);
    const second = fresh(ctx);
    const backend = backendOf((n) => (n === 1 ? late.promise : second.made), 50);
    const { handler, logger } = setup(ok, { backend });
    expect(answer(await handler(asyncEvent({ taskId: 'a' }), context)).code).toBe('BackendUnavailable');
    late.resolve(first.made);
    await vi.waitFor(() => expect(first.seen.storeClosed).toBe(true));
    expect(first.seen).toEqual({ started: false, queueClosed: true, storeClosed: true, inserts: 0 });
    expect(logger.entries.some((e) => e.message === 'async backend started past its start bound: closed it')).toBe(
      true,
    );
    vi.advanceTimersByTime(RETRY_MS);
    expect(answer(await handler(asyncEvent({ taskId: 'a' }), context)).status).toBe(202);
    expect([first.seen.inserts, second.seen.inserts]).toEqual([0, 1]);
    await handler.close();
    expect(second.seen.storeClosed).toBe(true);
  });
});

describe('close() while the backend start hangs', () => {
  it('ends within its own bound, and what the start makes later is closed, not used', async () => {
    const ctx = { concurrency: 2 } as BackendContext;
    const late = deferred<Made>();
    const made = fresh(ctx);
    const backend = backendOf(() => late.promise, Number.POSITIVE_INFINITY);
    const { handler, logger } = setup(ok, { backend });
    const waiting = handler(asyncEvent({ taskId: 'w' }), context);
    await tick(10);
    await handler.close({ timeoutMs: 50 });
    expect(answer(await waiting)).toMatchObject({ status: 503, retryAfter: '1' });
    late.resolve(made.made);
    await vi.waitFor(() => expect(made.seen.storeClosed).toBe(true));
    expect(made.seen).toEqual({ started: false, queueClosed: true, storeClosed: true, inserts: 0 });
    expect(answer(await handler(asyncEvent({ taskId: 'after' }), context)).status).toBe(503);
    await expect(handler.tasks.get('w')).rejects.toMatchObject({ statusCode: 503 });
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});

describe('async.backend.startTimeoutMs', () => {
  it.each([0, -1, 1.5, '30000', Number.NaN])('refuses %s', (startTimeoutMs) => {
    const backend = { ...backendOf(() => 'hang'), startTimeoutMs } as unknown as AsyncBackend;
    expect(() => setup(ok, { backend })).toThrow(/Expected `async\.backend\.startTimeoutMs` to be a number of ms/);
  });
});

describe('close() after waiting for a start', () => {
  it('takes that wait off its bound: a recovered attempt is cut at the bound close() was given, not later', async () => {
    const store = new MemoryTaskStore();
    const persistentOver = (createMs: number): AsyncBackend => ({
      name: 'postgres',
      persistent: true,
      create: (ctx) => tick(createMs).then(() => ({ store, queue: new PQueueDriver(ctx.concurrency) })),
    });
    // A first instance accepts a task due in 1 s and closes, leaving it in the store.
    const first = setup(ok, { backend: persistentOver(0) });
    expect(answer(await first.handler(asyncEvent({ taskId: 'later', delay: '1' }), context)).status).toBe(202);
    await first.handler.close({ timeoutMs: 0 });
    // The next one's start takes 1 s; close() begins at once with a bound of 1.2 s, so the task
    // (recovered, due meanwhile, its app never ending on its own) is cut about 0.2 s after the start.
    const cutAt = deferred<number>();
    const hangs: Listener = (req, res) => {
      getInvocation(req)?.signal.addEventListener('abort', () => {
        cutAt.resolve(performance.now());
        res.statusCode = 503;
        res.end();
      });
    };
    const second = setup(hangs, { backend: persistentOver(1000) });
    const begun = performance.now();
    void second.handler.tasks.get('later').catch(() => undefined);
    await second.handler.close({ timeoutMs: 1200 });
    // Without the wait taken off, the cut came a whole bound after the start (about 2.2 s).
    expect((await cutAt.promise) - begun).toBeLessThan(1800);
  });
});
