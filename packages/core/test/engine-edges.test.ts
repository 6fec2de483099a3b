import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AsyncBackend, TaskStore } from '../src/async/backend.js';
import { MemoryTaskStore, PQueueDriver } from '../src/async/memory.js';
import {
  AsyncEngine,
  createFcHandler,
  FcAsyncError,
  type Invocation,
  type Logger,
  logValue,
  parseFcEvent,
  resolveAsyncOptions,
} from '../src/index.js';
import { onAbort } from '../src/on-abort.js';
import type { BridgeResponse } from '../src/response.js';
import { asyncEvent, context, deferred, memoryLogger, ok, tick, until } from './helpers.js';

// Edges of the engine found by reading it line by line (session 16): a user's isFailure that
// throws, a stop landing in the turn an answer settles, a shutdown of a durable backend while an
// app ignores its abort, a subscriber and a logger that both throw.

afterEach(() => vi.useRealTimers());

/** A backend of `store` and the in-process queue; `persistent` as SQLite and BullMQ declare it. */
const backendOn = (name: string, store: TaskStore, persistent = false): AsyncBackend => ({
  name,
  persistent,
  create: ({ concurrency }) => ({ store, queue: new PQueueDriver(concurrency) }),
});

/** The in-memory store and queue, declared persistent: what close() does for SQLite and BullMQ. */
const durable = (): AsyncBackend => backendOn('durable-memory', new MemoryTaskStore(), true);

describe('async.isFailure that throws', () => {
  it('fails the attempt at once (UnhandledInvocationError), says so in the log, and rejects nothing unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const logger = memoryLogger();
    const failures: unknown[] = [];
    const handler = createFcHandler(ok, {
      logger,
      env: {},
      async: {
        mode: 'local',
        maxAsyncRetryAttempts: 0,
        timeoutSeconds: 600,
        isFailure: () => {
          throw new Error('isFailure bug');
        },
      },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    try {
      await handler(asyncEvent({ taskId: 'iff' }), context);
      await handler.drain();
      const task = await handler.tasks.get('iff');
      expect([task?.status, task?.taskErrorMessage]).toEqual(['Failed', 'isFailure bug']);
      expect(failures).toHaveLength(1);
      expect(logger.entries.filter((e) => e.message === 'async.isFailure threw')).toHaveLength(1);
      await tick(5);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await handler.close({ timeoutMs: 0 });
    }
  });
});

describe('a stop that reaches an attempt in the turn its answer settles', () => {
  it('leaves no stop-grace timer behind once the attempt has ended', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
    let answer!: (response: BridgeResponse) => void;
    const engine = new AsyncEngine(
      resolveAsyncOptions({ mode: 'local', stopGraceMs: 600_000, maxAsyncRetryAttempts: 0 }),
      {
        logger: memoryLogger(),
        redact: (headers) => headers as Record<string, string>,
        run: () => new Promise<BridgeResponse>((resolve) => (answer = resolve)),
      },
    );
    await engine.whenReady();
    const request = parseFcEvent(asyncEvent({ taskId: 'late_stop' }));
    const requestId = '1-64f6d6e7-000000000000000000000001';
    const invocation = { type: 'Async', requestId, taskId: 'late_stop', attempt: 0, qualifier: 'LATEST', source: 'x' };
    await engine.accept(request, invocation as unknown as Invocation);
    await until('late_stop to run', async () => (await engine.tasks.get('late_stop'))?.status === 'Running');
    // The stop writes Stopping, then (a turn later) aborts the attempt, whose answer settled in between.
    const stopping = engine.tasks.stop('late_stop');
    answer({ statusCode: 200, headers: {}, body: Buffer.from('ok') });
    await stopping;
    await engine.drain();
    expect((await engine.tasks.get('late_stop'))?.status).toBe('Stopped');
    await engine.close({ timeoutMs: 0 });
    // A grace timer armed after the attempt ended held the process open for stopGraceMs.
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('close() of a durable backend while an app ignores its abort', () => {
  it('ends the attempt as cut (Retrying, not counted) once the grace is out, and leaves no timer to fire on a closed store', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
    const logger = memoryLogger();
    const handler = createFcHandler(() => new Promise(() => {}), {
      logger,
      env: {},
      async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 50, backend: durable() },
    });
    await handler(asyncEvent({ taskId: 'deaf' }), context);
    await until('deaf to run', async () => (await handler.tasks.get('deaf'))?.status === 'Running');
    const task = await handler.tasks.get('deaf');
    await handler.close({ timeoutMs: 10 });
    // The attempt's 600 s timeout went with it: nothing of the closed engine is left to fire.
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
    expect(task?.status).toBe('Running');
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });

  it('records the cut attempt Retrying with its count unchanged, for the next start', async () => {
    const store = new MemoryTaskStore();
    const backend = backendOn('durable-memory', store, true);
    const handler = createFcHandler(() => new Promise(() => {}), {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 50, backend },
    });
    await handler(asyncEvent({ taskId: 'deaf2' }), context);
    await until('deaf2 to run', () => store.get('deaf2')?.status === 'Running');
    await handler.close({ timeoutMs: 10 });
    expect([store.get('deaf2')?.status, store.get('deaf2')?.alreadyRetriedTimes ?? 0]).toEqual(['Retrying', 0]);
  });
});

describe('close() of a durable backend while a stopped attempt is still writing its end', () => {
  it("calls the stop's onFailure before close resolves, though the write outlasted the close's grace", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const written = deferred();
    const writing = deferred();
    /** A store whose write of Stopped waits for the test, as a slow Redis does. */
    class SlowStop extends MemoryTaskStore {
      override transition(...args: Parameters<MemoryTaskStore['transition']>) {
        if (args[1] !== 'Stopped') return super.transition(...args);
        writing.resolve();
        return written.promise.then(() => super.transition(...args)) as never;
      }
    }
    const store = new SlowStop();
    const failures: unknown[] = [];
    const started = deferred();
    const handler = createFcHandler(
      () => {
        started.resolve();
        return new Promise(() => {}); // ignores its abort
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 50, backend: backendOn('durable', store, true) },
        destinations: { onFailure: (record) => void failures.push(record) },
      },
    );
    await handler(asyncEvent({ taskId: 'late' }), context);
    await started.promise;
    expect((await handler.tasks.stop('late')).status).toBe('Stopping');
    const closing = handler.close({ timeoutMs: 0 });
    // The stop's grace (50 ms) runs out: the attempt ends Stopped, its write held.
    await vi.advanceTimersByTimeAsync(50);
    await writing.promise;
    // The close's own grace for it (100 ms) runs out while the write is still under way.
    await vi.advanceTimersByTimeAsync(100);
    written.resolve();
    await vi.advanceTimersByTimeAsync(3000);
    await closing;
    expect([store.get('late')?.status, store.get('late')?.deliveryPending]).toEqual(['Stopped', undefined]);
    expect(failures).toHaveLength(1);
  });
});

describe('an attempt its process did not live through', () => {
  it('is logged with its task, request and attempt when the next start finds it, and told as an attempt', async () => {
    const store = new MemoryTaskStore();
    const backend = backendOn('durable-memory', store, true);
    const options = { mode: 'local' as const, timeoutSeconds: 600, maxAsyncRetryAttempts: 1, backend };
    // The first process runs the task and dies with it (never closed).
    const crashed = createFcHandler(() => new Promise(() => {}), { logger: memoryLogger(), env: {}, async: options });
    await crashed(asyncEvent({ taskId: 'poison' }), context);
    await until('poison to run', () => store.get('poison')?.status === 'Running');
    const logger = memoryLogger();
    const next = createFcHandler(ok, { logger, env: {}, async: options });
    const told: unknown[] = [];
    next.engine?.subscribe((e) => {
      if (e.type === 'attempt') told.push([e.taskId, e.attempt, e.outcome, e.status]);
    });
    await until(
      'poison to succeed on the next start',
      async () => (await next.tasks.get('poison'))?.status === 'Succeeded',
    );
    const line = logger.entries.find((e) => e.message === 'async attempt interrupted');
    expect(line).toMatchObject({ level: 'warn', fields: { taskId: 'poison', attempt: 0 } });
    expect(line?.fields?.requestId).toBe(store.get('poison')?.requestId);
    expect(told).toEqual([
      ['poison', 0, 'failure', 'Retrying'],
      ['poison', 1, 'success', 'Succeeded'],
    ]);
    await next.close();
  });
});

describe('a store away while tasks run', () => {
  it("logs the first task's failed bookkeeping whole, the rest of the burst as a count, and every task still ends", async () => {
    let away = true;
    /** A store whose writes fail with 503 while `away` (Redis unreachable), as bullmq() and sqlite() answer. */
    class Away extends MemoryTaskStore {
      override transition(...args: Parameters<MemoryTaskStore['transition']>) {
        if (away) throw new FcAsyncError('RedisUnavailable', 'Redis did not answer in time', { statusCode: 503 });
        return super.transition(...args);
      }
    }
    const backend = backendOn('away', new Away());
    const logger = memoryLogger();
    const handler = createFcHandler(ok, { logger, env: {}, async: { mode: 'local', backend } });
    for (let i = 0; i < 5; i++) await handler(asyncEvent({ taskId: `t${i}` }), context);
    await until('a log line', () => logger.entries.length > 0);
    await tick(50);
    const lines = logger.entries.filter((e) => e.message.startsWith('async task bookkeeping failed'));
    expect(lines.map((e) => [e.level, e.fields?.taskId, e.fields?.code])).toEqual([
      ['error', 't0', 'RedisUnavailable'],
    ]);
    away = false;
    await handler.drain();
    const statuses = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await handler.tasks.get(`t${i}`))?.status));
    expect(statuses).toEqual(Array(5).fill('Succeeded'));
    await handler.close();
  });
});

describe("the task API's read", () => {
  it("is the store's getCommitted when it has one (a store that groups its commits commits first)", async () => {
    const reads: string[] = [];
    class Grouping extends MemoryTaskStore {
      getCommitted(taskId: string) {
        reads.push(taskId);
        return super.get(taskId);
      }
    }
    const backend = backendOn('grouping', new Grouping());
    const handler = createFcHandler(ok, { logger: memoryLogger(), env: {}, async: { mode: 'local', backend } });
    await handler(asyncEvent({ taskId: 'read_me' }), context);
    await handler.drain();
    expect((await handler.tasks.get('read_me'))?.status).toBe('Succeeded');
    expect(reads).toEqual(['read_me']);
    await handler.close();
  });
});

describe('a task whose record is gone before it ran', () => {
  it('is counted done, so drain() ends, and says so in the log', async () => {
    /** A store that answers an insert it does not keep (a bug of a custom backend, or a row deleted by hand). */
    class Forgetful extends MemoryTaskStore {
      override insert(): boolean {
        return true;
      }
    }
    const backend = backendOn('forgetful', new Forgetful());
    const logger = memoryLogger();
    const handler = createFcHandler(ok, { logger, env: {}, async: { mode: 'local', backend } });
    expect((await handler(asyncEvent({ taskId: 'vanished' }), context)).statusCode).toBe(202);
    const drained = await Promise.race([handler.drain().then(() => 'drained'), tick(2000).then(() => 'waiting')]);
    expect(drained).toBe('drained');
    expect(logger.entries.find((e) => e.message === 'async task gone from its store before it ran')).toMatchObject({
      level: 'warn',
      fields: { taskId: 'vanished' },
    });
    await handler.close();
  });
});

describe('a stop while the channel that tells other instances is down', () => {
  /** A distributed store whose stop channel refuses every publish (Redis connection lost). */
  class ChannelDown extends MemoryTaskStore {
    requestStop(): Promise<void> {
      return Promise.reject(new Error('Connection is closed.'));
    }
  }

  it('answers Stopping for a task running here, asked once or twice, and logs what it could not tell', async () => {
    const store = new ChannelDown();
    const backend = backendOn('distributed-memory', store, true);
    const logger = memoryLogger();
    // An app slow to honour its abort: the task stays Stopping meanwhile.
    const handler = createFcHandler(() => new Promise(() => {}), {
      logger,
      env: {},
      async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 1000, backend },
    });
    await handler(asyncEvent({ taskId: 'here' }), context);
    await until('here to run', () => store.get('here')?.status === 'Running');
    expect((await handler.tasks.stop('here')).status).toBe('Stopping');
    expect((await handler.tasks.stop('here')).status).toBe('Stopping');
    const lines = logger.entries.filter((e) => e.message === 'async stop not told to other instances');
    expect(lines.map((e) => [e.level, e.fields?.taskId])).toEqual([
      ['warn', 'here'],
      ['warn', 'here'],
    ]);
    await handler.close({ timeoutMs: 10 });
  });
});

describe('close() of a durable backend while a job is still reading its task', () => {
  it('cuts the attempt that claims the task after the deadline (Retrying, not counted), without an onFailure call', async () => {
    /** A store whose read takes a round trip, as BullMQ's does: the job reads when the deadline comes. */
    const memoryStore = new MemoryTaskStore();
    const store: TaskStore = {
      insert: (record) => memoryStore.insert(record),
      get: (taskId) => new Promise((resolve) => setTimeout(() => resolve(memoryStore.get(taskId)), 40)),
      transition: (taskId, status, options) => memoryStore.transition(taskId, status, options),
      update: (taskId, patch) => memoryStore.update(taskId, patch),
      list: (query) => memoryStore.list(query),
      unfinished: () => memoryStore.unfinished(),
    };
    const backend = backendOn('durable-slow', store, true);
    const failures: unknown[] = [];
    let ran = 0;
    const handler = createFcHandler(
      () => {
        ran++;
        return new Promise(() => {});
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', timeoutSeconds: 600, stopGraceMs: 50, maxAsyncRetryAttempts: 0, backend },
        destinations: { onFailure: (record) => void failures.push(record) },
      },
    );
    await handler(asyncEvent({ taskId: 'late_claim' }), context);
    await handler.close({ timeoutMs: 10 });
    await tick(100);
    const task = memoryStore.get('late_claim');
    expect([task?.status, task?.alreadyRetriedTimes ?? 0, failures.length, ran]).toEqual(['Retrying', 0, 0, 0]);
  });
});

describe('a subscriber that throws, with a logger whose warn throws too', () => {
  it('still answers 202 and runs the task to its end', async () => {
    const base = memoryLogger();
    const logger: Logger = {
      ...base,
      warn: () => {
        throw new Error('log sink down');
      },
    };
    const handler = createFcHandler(ok, { logger, env: {}, async: { mode: 'local' } });
    handler.engine?.subscribe(() => {
      throw new Error('subscriber bug');
    });
    try {
      expect((await handler(asyncEvent({ taskId: 'noisy' }), context)).statusCode).toBe(202);
      await handler.drain();
      expect((await handler.tasks.get('noisy'))?.status).toBe('Succeeded');
    } finally {
      await handler.close({ timeoutMs: 0 });
    }
  });
});

describe('a system clock set forward (a VM resumed, NTP stepping)', () => {
  it("brings a delayed task and a running attempt's timeout on within a second, as docs/async.md says", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
    const ran: string[] = [];
    const handler = createFcHandler(
      (req, res) => {
        ran.push(req.url ?? '');
        // The slow route never answers: only its timeout ends it.
        if (req.url !== '/slow') res.end('ok');
      },
      { logger: memoryLogger(), env: {}, async: { mode: 'local', timeoutSeconds: 600, maxAsyncRetryAttempts: 0 } },
    );
    try {
      await handler(asyncEvent({ taskId: 'later', path: '/later', delay: '600' }), context);
      await handler(asyncEvent({ taskId: 'slow', path: '/slow' }), context);
      await vi.advanceTimersByTimeAsync(10);
      expect(ran).toEqual(['/slow']);
      vi.setSystemTime(Date.now() + 601_000);
      await vi.advanceTimersByTimeAsync(1500);
      expect(ran).toEqual(['/slow', '/later']);
      expect((await handler.tasks.get('slow'))?.status).toBe('Failed');
    } finally {
      vi.useRealTimers();
      await handler.close({ timeoutMs: 0 });
    }
  });
});

describe('an app that throws what is no Error, or an Error that cannot be read', () => {
  it('ends the attempt Failed with what can be read of it, logs it with its stack, and the process and the next task go on', async () => {
    const unhandledRejections: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandledRejections.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const getters = Object.defineProperty(new Error('hidden'), 'message', {
      get() {
        throw new Error('message getter');
      },
    });
    const thrown: Record<string, unknown> = {
      '/nullproto': Object.create(null),
      '/status': { status: 409, message: 'order already paid' },
      '/symbol': Symbol('odd'),
      '/getter': getters,
    };
    const logger = memoryLogger();
    const handler = createFcHandler(
      (req, res) => {
        if (req.url === '/ok') return void res.end('ok');
        throw thrown[req.url ?? ''];
      },
      { logger, env: {}, async: { mode: 'local', maxAsyncRetryAttempts: 0 } },
    );
    try {
      for (const path of [...Object.keys(thrown), '/ok']) {
        await handler(asyncEvent({ taskId: path.slice(1), path }), context);
      }
      await handler.drain();
      const ended = async (id: string) => {
        const task = await handler.tasks.get(id);
        return [task?.status, task?.taskErrorMessage];
      };
      expect(await ended('nullproto')).toEqual(['Failed', '[object Object]']);
      expect(await ended('status')).toEqual(['Failed', 'order already paid']);
      expect(await ended('symbol')).toEqual(['Failed', 'Symbol(odd)']);
      expect(await ended('getter')).toEqual(['Failed', 'The error could not be read']);
      expect((await handler.tasks.get('ok'))?.status).toBe('Succeeded');
      const failed = logger.entries.filter((e) => e.message === 'async attempt failed');
      expect(failed).toHaveLength(4);
      // Each with what the log can show of it, never throwing (a log line must not end the process).
      expect(JSON.stringify(failed.map((e) => logValue(e.fields?.error)))).toContain('order already paid');
      await tick(5);
      expect(unhandledRejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await handler.close({ timeoutMs: 0 });
    }
  });

  it('an attempt that overruns its timeout without yielding, then answers, failed by its timeout (as FC ends it)', async () => {
    const handler = createFcHandler(
      (_req, res) => {
        const end = Date.now() + 1200;
        while (Date.now() < end) {
          // CPU-bound: the timer cannot fire meanwhile
        }
        res.end('late');
      },
      { logger: memoryLogger(), env: {}, async: { mode: 'local', timeoutSeconds: 1, maxAsyncRetryAttempts: 0 } },
    );
    try {
      await handler(asyncEvent({ taskId: 'overrun' }), context);
      await handler.drain();
      const task = await handler.tasks.get('overrun');
      expect([task?.status, task?.taskErrorMessage]).toEqual(['Failed', 'The attempt timed out after 1 s']);
    } finally {
      await handler.close({ timeoutMs: 0 });
    }
  });
});

describe('onAbort', () => {
  it('calls every caller once on abort, not one taken back, and none of a signal already aborted', () => {
    const controller = new AbortController();
    const calls: string[] = [];
    onAbort(controller.signal, () => calls.push('a'));
    const forgetB = onAbort(controller.signal, () => calls.push('b'));
    onAbort(controller.signal, () => calls.push('c'));
    forgetB();
    controller.abort();
    controller.abort();
    onAbort(controller.signal, () => calls.push('late'));
    expect(calls).toEqual(['a', 'c']);
  });
});
