import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AsyncBackend, QueueDriver, TaskRecord, TaskStore } from '../src/async/backend.js';
import { MemoryTaskStore, PQueueDriver } from '../src/async/memory.js';
import { fcEndedInvocation } from '../src/async/platform.js';
import {
  buildInvocation,
  captureRequest,
  createFcHandler,
  createRedactor,
  detectInvocation,
  getInvocation,
  PlatformAsync,
  resolveAsyncOptions,
} from '../src/index.js';
import { asyncEvent, context, deferred, type Listener, memoryLogger, ok, setup, until } from './helpers.js';

// Behaviour of the async engine that the mutation audit of session 22 found no test holding.

afterEach(() => {
  vi.useRealTimers();
});

/** A backend of `store` and the in-process queue; `persistent` as SQLite and BullMQ declare it. */
const backendOn = (store: TaskStore, persistent: boolean): AsyncBackend => ({
  name: persistent ? 'durable-memory' : 'slow-memory',
  persistent,
  create: ({ concurrency }) => ({ store, queue: new PQueueDriver(concurrency) }),
});

/** Bounds a wait on `promise`, failing with `what` past `ms`. */
async function within<T>(what: string, promise: Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An app answering 500 with an empty body. */
const failing500: Listener = (_req, res) => {
  res.statusCode = 500;
  res.end();
};

describe("a task's events say why it was retried, failed or expired", () => {
  it('each Retrying and the Failed event carry the attempt failure, as FC shows in GetAsyncTask', async () => {
    const { handler } = setup(failing500, { maxAsyncRetryAttempts: 1 });
    await handler(asyncEvent({ taskId: 'says_why' }), context);
    await handler.drain();
    const task = await handler.tasks.get('says_why');
    expect(task?.events.map((e) => [e.status, e.eventDetail])).toEqual([
      ['Enqueued', ''],
      ['Dequeued', ''],
      ['Running', ''],
      ['Retrying', 'The function answered HTTP 500'],
      ['Dequeued', ''],
      ['Running', ''],
      ['Failed', 'The function answered HTTP 500'],
    ]);
    expect(task?.events.map((e) => e.eventId)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('the Expired event names maxAsyncEventAgeInSeconds', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { handler } = setup(failing500, {
      maxAsyncEventAgeInSeconds: 3,
      maxAsyncRetryAttempts: 8,
      backoff: { baseMs: 2000, maxMs: 2000, jitter: 'none' },
    });
    await handler(asyncEvent({ taskId: 'too_old' }), context);
    await vi.advanceTimersByTimeAsync(10_000);
    await handler.drain();
    const task = await handler.tasks.get('too_old');
    expect(task?.events.at(-1)).toMatchObject({
      status: 'Expired',
      eventDetail: 'The event is older than maxAsyncEventAgeInSeconds (3 s)',
    });
  });
});

describe('an attempt a graceful shutdown cut (durable backend)', () => {
  it('is run again on the next start under the same number: the shutdown uses up none of the retries', async () => {
    const store = new MemoryTaskStore();
    const options = { mode: 'local' as const, timeoutSeconds: 600, stopGraceMs: 50, backend: backendOn(store, true) };
    const first = createFcHandler(() => new Promise(() => {}), { logger: memoryLogger(), env: {}, async: options });
    await first(asyncEvent({ taskId: 'cut' }), context);
    await until('cut to run', () => store.get('cut')?.status === 'Running');
    await first.close({ timeoutMs: 0 });
    expect(store.get('cut')?.status).toBe('Retrying');

    // The next start: the attempt that ran is attempt 0 again, and one retry is still there.
    const retryCounts: unknown[] = [];
    const failures: unknown[] = [];
    const next = createFcHandler(
      (req, res) => {
        retryCounts.push(req.headers['x-fc-retry-count']);
        res.statusCode = retryCounts.length === 1 ? 500 : 200;
        res.end();
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { ...options, maxAsyncRetryAttempts: 1, backoff: { baseMs: 1, maxMs: 1 } },
        destinations: { onFailure: (r) => void failures.push(r) },
      },
    );
    await next.engine?.whenReady();
    await until('cut to end on the next start', () => store.get('cut')?.status === 'Succeeded');
    await next.drain();
    expect(retryCounts).toEqual(['0', '1']);
    expect(store.get('cut')).toMatchObject({ attempts: 2, alreadyRetriedTimes: 1 });
    expect(failures).toEqual([]);
    await next.close();
  });
});

describe('maxQueuedTasks with a store that answers its inserts later (a durable custom store)', () => {
  it('counts the accepts still writing their task: a burst is held to the bound', async () => {
    const gate = deferred();
    let inserts = 0;
    const memory = new MemoryTaskStore();
    // The memory store, its inserts answered once the gate opens (as a store writing to disk does later).
    const slow = new Proxy(memory, {
      get(target, name) {
        if (name === 'insert') {
          return async (record: TaskRecord) => {
            inserts++;
            await gate.promise;
            return target.insert(record);
          };
        }
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as TaskStore;
    const handler = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', maxQueuedTasks: 3, backend: backendOn(slow, false) },
    });
    await handler.engine?.whenReady();
    let answered = 0;
    const answers = Array.from({ length: 5 }, (_, i) =>
      handler(asyncEvent({ taskId: `burst_${i}` }), context).then((result) => {
        answered++;
        return result.statusCode;
      }),
    );
    // The two past the bound are refused while the first three are still being written.
    await until('the two requests past maxQueuedTasks to be refused', () => answered === 2, 5_000);
    expect(inserts).toBe(3);
    gate.resolve();
    expect((await Promise.all(answers)).sort()).toEqual([202, 202, 202, 429, 429]);
    await handler.drain();
    await handler.close();
  });
});

describe('close() options', () => {
  it('refuses a timeoutMs of NaN with a TypeError (it would close at once, cutting what runs)', async () => {
    const { handler } = setup(ok);
    await expect(handler.close({ timeoutMs: Number.NaN })).rejects.toThrow(
      'Expected `timeoutMs` to be a number from 0 and up, got `NaN`',
    );
    await handler.close();
  });

  it('stopWithinMs bounds the stop grace too: an app that ignores its stop is recorded Stopped and reaches onFailure', async () => {
    // stopGraceMs is the default 10 s: close({ stopWithinMs: 1000 }) waits half of it for the app.
    const started = deferred();
    const { handler, failures } = setup(() => {
      started.resolve();
      return new Promise(() => {});
    });
    await handler(asyncEvent({ taskId: 'deaf' }), context);
    await started.promise;
    await within('close({ timeoutMs: 0, stopWithinMs: 1000 })', handler.close({ timeoutMs: 0, stopWithinMs: 1000 }));
    expect((await handler.engine?.tasks.get('deaf'))?.status).toBe('Stopped');
    expect(failures.map((f) => f.requestContext.condition)).toEqual(['Stopped']);
  });
  it('stopWithinMs leaves its second half to the last destination calls: the onFailure call of a task stopped at the grace completes', async () => {
    // Fake timers: the app's grace, the destination's 300 ms and close()'s own bounds run on one clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const started = deferred();
    const failures: string[] = [];
    const { handler } = setup(
      () => {
        started.resolve();
        return new Promise(() => {});
      },
      {},
      {
        destinations: {
          onFailure: async (record) => {
            await new Promise((resolve) => setTimeout(resolve, 300));
            failures.push(record.requestContext.condition);
          },
        },
      },
    );
    await handler(asyncEvent({ taskId: 'stopped_late' }), context);
    await started.promise;
    let closed = false;
    const closing = handler.close({ timeoutMs: 0, stopWithinMs: 1000 }).then(() => {
      closed = true;
    });
    // Driven on the fake clock until close() ends; 5 s of it is far past any bound close() has.
    for (let ms = 0; !closed; ms += 20) {
      if (ms > 5_000) throw new Error('close() did not end within 5 s of the fake clock');
      await vi.advanceTimersByTimeAsync(20);
    }
    await closing;
    expect(failures).toEqual(['Stopped']);
    expect((await handler.engine?.tasks.get('stopped_late'))?.destinationStatus).toBe('Succeeded');
  });
});

describe('close() of a durable backend while a retry backs off', () => {
  it('keeps the retry for the next start rather than wait out its backoff within the deadline', async () => {
    const store = new MemoryTaskStore();
    let calls = 0;
    const handler = createFcHandler(
      (_req, res) => {
        calls++;
        res.statusCode = 500;
        res.end();
      },
      {
        logger: memoryLogger(),
        env: {},
        async: {
          mode: 'local',
          maxAsyncRetryAttempts: 2,
          backoff: { baseMs: 20_000, maxMs: 20_000, jitter: 'none' },
          backend: backendOn(store, true),
        },
      },
    );
    await handler(asyncEvent({ taskId: 'backing_off' }), context);
    await until('the first attempt to fail', () => store.get('backing_off')?.status === 'Retrying');
    // The deadline (25 s) is past the retry (due in 20 s): nothing runs until then, and the
    // backend keeps the task, so close() ends at once.
    await within('close() to end without waiting out the backoff', handler.close({ timeoutMs: 25_000 }));
    expect([calls, store.get('backing_off')?.status]).toEqual([1, 'Retrying']);
  });
});

/** Ends `ids` in `store` Succeeded with their onSuccess call cut by a shutdown: owed to the next start. */
async function owedDeliveries(store: MemoryTaskStore, ids: string[]): Promise<void> {
  const hung = createFcHandler(ok, {
    logger: memoryLogger(),
    env: {},
    async: { mode: 'local', backend: backendOn(store, true), stopGraceMs: 20 },
    destinations: { onSuccess: () => new Promise<void>(() => {}) },
  });
  for (const taskId of ids) await hung(asyncEvent({ taskId }), context);
  await until('every task to end', () => ids.every((id) => store.get(id)?.status === 'Succeeded'));
  await hung.close({ timeoutMs: 0, stopWithinMs: 100 });
  expect(ids.map((id) => store.get(id)?.deliveryPending)).toEqual(ids.map(() => true));
}

describe('destination calls a shutdown left owed, on the next start', () => {
  it('are made side by side (async.concurrency), not one after another behind a slow destination', async () => {
    const store = new MemoryTaskStore();
    await owedDeliveries(store, ['owed_a', 'owed_b']);
    const gate = deferred();
    const called: string[] = [];
    const next = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: backendOn(store, true) },
      destinations: {
        onSuccess: async (record) => {
          called.push(record.requestContext.requestId);
          await gate.promise;
        },
      },
    });
    await next.engine?.whenReady();
    await until('both owed records to be in delivery at once', () => called.length === 2, 5_000);
    gate.resolve();
    await next.drain();
    expect(['owed_a', 'owed_b'].map((id) => store.get(id)?.destinationStatus)).toEqual(['Succeeded', 'Succeeded']);
    await next.close();
  });

  it('are no longer owed when the next start has no destination on that side: the mark is cleared', async () => {
    const store = new MemoryTaskStore();
    await owedDeliveries(store, ['owed_nowhere']);
    const next = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: backendOn(store, true) },
    });
    await next.engine?.whenReady();
    await next.drain();
    expect(store.get('owed_nowhere')?.deliveryPending).toBeUndefined();
    // Nothing is left for a later start to take up again.
    expect((await store.unfinished()).map((r) => r.taskId)).toEqual([]);
    await next.close();
  });
});

describe('PutAsyncInvokeConfig (engine.configure) that names only some settings', () => {
  it("keeps the handler's own retries and event age for those it leaves out", async () => {
    let calls = 0;
    const failures: unknown[] = [];
    const { handler } = setup(
      (_req, res) => {
        calls++;
        res.statusCode = 500;
        res.end();
      },
      { maxAsyncRetryAttempts: 0, maxAsyncEventAgeInSeconds: 120 },
    );
    handler.engine?.configure({ destinations: { onFailure: (r) => void failures.push(r) } });
    expect(handler.engine?.currentConfig()).toMatchObject({ maxAsyncRetryAttempts: 0, maxAsyncEventAgeInSeconds: 120 });
    await handler(asyncEvent(), context);
    await handler.drain();
    expect([calls, failures.length]).toEqual([1, 1]);
  });
});

describe('async options', () => {
  it('default as documented (stopGraceMs 10 s, timeoutSeconds 60, 3 retries, a day of event age, equal jitter)', () => {
    expect(resolveAsyncOptions({})).toMatchObject({
      concurrency: 10,
      maxQueuedTasks: 10_000,
      maxAsyncPayloadBytes: 128 * 1024,
      maxAsyncRetryAttempts: 3,
      maxAsyncEventAgeInSeconds: 86_400,
      timeoutSeconds: 60,
      stopGraceMs: 10_000,
      backoff: { baseMs: 1000, maxMs: 60_000, jitter: 'equal' },
      functionName: 'fc-async-local',
    });
  });

  it.each([
    [{ timeoutSeconds: 0 }, 'Expected `async.timeoutSeconds` to be a number above 0 and at most 86400, got `0`'],
    [{ backoff: { baseMs: 0 } }, 'Expected `async.backoff.baseMs` to be a number above 0 and at most 3600000, got `0`'],
  ])('refuse zero where a time must pass: %j', (options, message) => {
    expect(() => resolveAsyncOptions(options)).toThrow(message);
  });
});

describe('captureRequest with a redactor of its own (not createRedactor)', () => {
  it("drops FC's gateway headers as well as what the redactor drops", () => {
    const redactAuthorization = (headers: Record<string, string | string[] | undefined>) => {
      const kept: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers))
        if (name !== 'authorization' && value !== undefined) kept[name] = value;
      return kept;
    };
    const captured = captureRequest(
      {
        method: 'POST',
        url: '/jobs',
        headers: {
          'x-fc-invocation-type': 'Async',
          'x-fc-async-delay': '5',
          'x-fc-retry-count': '0',
          'x-fc-log-type': 'Tail',
          authorization: 'Bearer secret',
          accept: '*/*',
        },
        body: Buffer.from('{}'),
      },
      redactAuthorization,
    );
    expect(captured.headers).toEqual({ accept: '*/*' });
  });
});

describe('platform mode: an app whose invocation signal aborted', () => {
  it('is let go exactly async.stopGraceMs after FC ended it (closed its request) when it never settles, and its invocation fails for FC', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const logger = memoryLogger();
    const platform = new PlatformAsync(resolveAsyncOptions({ mode: 'platform', stopGraceMs: 100 }), {
      logger,
      redact: createRedactor(),
      run: () => new Promise(() => {}),
    });
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': '0' };
    const fc = new AbortController();
    const invocation = buildInvocation(detectInvocation(headers), headers, undefined, {}, fc.signal);
    const request = { method: 'POST', url: '/job', headers, body: Buffer.alloc(0) };
    let answer: { statusCode: number } | undefined;
    void platform.run(request, invocation).then((r) => {
      answer = r;
    });
    fc.abort(fcEndedInvocation());
    await vi.advanceTimersByTimeAsync(99);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(answer?.statusCode).toBe(500);
    await platform.drain();
    expect(logger.entries.map((e) => e.message)).toContain(
      'the app did not settle within async.stopGraceMs after FC ended the async invocation: no longer waited for',
    );
  });

  it('waits for the app whatever the wait when its signal aborted for another reason (a shutdown): only an end FC made is given up', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const platform = new PlatformAsync(resolveAsyncOptions({ mode: 'platform', stopGraceMs: 100 }), {
      logger: memoryLogger(),
      redact: createRedactor(),
      // The app cleans up for 500 ms after its abort, then answers.
      run: () =>
        new Promise((resolve) =>
          shutdown.signal.addEventListener('abort', () =>
            setTimeout(() => resolve({ statusCode: 200, headers: {}, body: 'cleaned up' }), 500),
          ),
        ),
    });
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': '0' };
    const shutdown = new AbortController();
    const invocation = buildInvocation(detectInvocation(headers), headers, undefined, {}, shutdown.signal);
    let answer: { statusCode: number; body: unknown } | undefined;
    void platform.run({ method: 'POST', url: '/job', headers, body: Buffer.alloc(0) }, invocation).then((r) => {
      answer = r;
    });
    shutdown.abort(new Error('the process is shutting down'));
    await vi.advanceTimersByTimeAsync(500);
    expect(answer).toMatchObject({ statusCode: 200, body: 'cleaned up' });
  });
});

describe('an attempt that runs past async.timeoutSeconds, the last one', () => {
  it('reaches onFailure as FC records a timeout: 504, errorType TimeoutError, the message naming the timeout', async () => {
    const { handler, failures } = setup(() => new Promise(() => {}), {
      timeoutSeconds: 0.05,
      maxAsyncRetryAttempts: 0,
    });
    await handler(asyncEvent({ taskId: 'slow' }), context);
    await handler.drain();
    expect(
      failures.map((f) => [f.requestContext.condition, f.responseContext.statusCode, JSON.parse(f.responsePayload)]),
    ).toEqual([
      ['InvocationError', 504, { errorMessage: 'The attempt timed out after 0.05 s', errorType: 'TimeoutError' }],
    ]);
  });
});

describe('AsyncEngine.accept called directly (a runtime or a middleware of its own)', () => {
  it("refuses a caller's task id FC would refuse: 400 InvalidArgument, nothing stored", async () => {
    const { handler } = setup(ok);
    const engine = handler.engine;
    await engine?.whenReady();
    const headers = { 'x-fc-invocation-type': 'Async' };
    const invocation = buildInvocation(detectInvocation(headers), headers, undefined, {});
    invocation.taskId = 'no spaces allowed';
    const request = { method: 'POST', url: '/job', headers, body: Buffer.alloc(0), requestId: invocation.requestId };
    await expect(engine?.accept(request, invocation)).rejects.toMatchObject({
      code: 'InvalidArgument',
      statusCode: 400,
    });
    expect((await engine?.tasks.list())?.tasks).toEqual([]);
    await handler.close();
  });
});

describe('a stop of a waiting task with a shared queue (BullMQ)', () => {
  it('calls its onFailure once, even when a job of the task comes after the stop (another instance, a stalled job)', async () => {
    const store = new MemoryTaskStore();
    const local = new PQueueDriver(2);
    let processed = 0;
    const queue: QueueDriver = {
      shared: true,
      start: (process) =>
        local.start(async (job) => {
          const result = await process(job);
          processed++;
          return result;
        }),
      enqueue: (job, delayMs) => local.enqueue(job, delayMs),
      cancel: (taskId) => local.cancel(taskId),
      pending: () => local.pending(),
      running: () => local.running(),
      close: () => local.close(),
    };
    const backend: AsyncBackend = { name: 'shared-table', persistent: true, create: () => ({ store, queue }) };
    const gate = deferred();
    let calls = 0;
    const handler = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend },
      destinations: {
        onFailure: async () => {
          calls++;
          await gate.promise;
        },
      },
    });
    await handler(asyncEvent({ taskId: 'stopped_once', delay: '60' }), context);
    await handler.tasks.stop('stopped_once');
    await until('the stop to call onFailure', () => calls === 1);
    // While that call is under way, a job of the task reaches this instance.
    local.enqueue({ taskId: 'stopped_once' }, 0);
    await until('the late job to be handled (or to call onFailure again)', () => processed === 1 || calls === 2);
    gate.resolve();
    await until('the delivery to be recorded', () => store.get('stopped_once')?.destinationStatus !== undefined);
    expect([calls, store.get('stopped_once')?.status]).toEqual([1, 'Stopped']);
    await handler.close();
  });
});

describe('a task its process left Stopping (the stop asked, the app not yet settled, then the process died)', () => {
  it('is recorded Stopped by the next start, which calls its onFailure once and drains', async () => {
    const store = new MemoryTaskStore();
    const backend = backendOn(store, true);
    const died = createFcHandler(() => new Promise(() => {}), {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 60_000, backend },
    });
    await died(asyncEvent({ taskId: 'left_stopping' }), context);
    await until('left_stopping to run', () => store.get('left_stopping')?.status === 'Running');
    expect((await died.tasks.stop('left_stopping')).status).toBe('Stopping');

    const failures: string[] = [];
    const next = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend },
      destinations: { onFailure: (r) => void failures.push(r.requestContext.condition) },
    });
    await next.engine?.whenReady();
    await within('the next start to drain', next.drain());
    expect([store.get('left_stopping')?.status, failures]).toEqual(['Stopped', ['Stopped']]);
    await next.close();
    // The process that "died": its timers go with it.
    await died.close({ timeoutMs: 0, stopWithinMs: 0 });
  });
});

describe('a stop asked again of a task already Stopping (another instance wrote the stop, its message lost)', () => {
  it('reaches the attempt running here: its signal aborts and the task ends Stopped', async () => {
    const store = new MemoryTaskStore();
    let aborted = false;
    const failures: string[] = [];
    const handler = createFcHandler(
      (req, res) => {
        const signal = getInvocation(req)?.signal;
        signal?.addEventListener('abort', () => {
          aborted = true;
          res.statusCode = 500;
          res.end();
        });
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', timeoutSeconds: 600, backend: backendOn(store, true) },
        destinations: { onFailure: (r) => void failures.push(r.requestContext.condition) },
      },
    );
    await handler(asyncEvent({ taskId: 'stop_again' }), context);
    await until('stop_again to run', () => store.get('stop_again')?.status === 'Running');
    // Another instance's stop: written to the shared store, its message to this instance lost.
    store.transition('stop_again', 'Stopping', { from: ['Running'] });
    expect((await handler.tasks.stop('stop_again')).status).toBe('Stopping');
    await until('the attempt to be aborted by the stop asked again', () => aborted, 5_000);
    await handler.drain();
    expect([store.get('stop_again')?.status, failures]).toEqual(['Stopped', ['Stopped']]);
    await handler.close();
  });
});

describe('close() of a durable backend while an attempt winds down after its abort', () => {
  it('waits for the app to end (within stopGraceMs) before it returns, and keeps the task for the next start', async () => {
    const store = new MemoryTaskStore();
    let cleaned = false;
    const handler = createFcHandler(
      (req, res) => {
        getInvocation(req)?.signal.addEventListener('abort', () => {
          // Clean-up that takes a moment (a child process killed, a work folder removed).
          setTimeout(() => {
            cleaned = true;
            res.statusCode = 500;
            res.end();
          }, 20);
        });
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 10_000, backend: backendOn(store, true) },
      },
    );
    await handler(asyncEvent({ taskId: 'winding_down' }), context);
    await until('winding_down to run', () => store.get('winding_down')?.status === 'Running');
    await within('close()', handler.close({ timeoutMs: 0 }));
    expect(cleaned).toBe(true);
    expect(store.get('winding_down')).toMatchObject({ status: 'Retrying', attempts: 0 });
  });
});
