import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AsyncBackend,
  createFcHandler,
  MemoryTaskStore,
  memory,
  PQueueDriver,
  RetentionPruner,
} from '../src/index.js';
import { asyncEvent, context, deferred, memoryLogger, ok, setup } from './helpers.js';

// Behaviour the session-18 mutation audit found no test for: each test here fails on one mutant.

afterEach(() => {
  vi.useRealTimers();
});

describe('the memory backend', () => {
  it('keeps finished tasks that hold exactly maxBytes: only past it do the oldest go', async () => {
    // Each task: a 1000-byte body and a 2000-byte answer; 6000 bytes hold two of them exactly.
    const { handler } = setup(
      (_req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end('a'.repeat(2000));
      },
      { backend: memory({ maxBytes: 6000 }) },
    );
    for (let i = 0; i < 3; i++) {
      await handler(asyncEvent({ taskId: `t${i}`, method: 'POST', body: 'b'.repeat(1000) }), context);
      await handler.drain();
    }
    const ids = (await handler.tasks.list({ sortOrderByTime: 'asc' })).tasks.map((t) => t.taskId);
    expect(ids).toEqual(['t1', 't2']);
  });
});

describe('RetentionPruner', () => {
  class GatedPruner extends RetentionPruner {
    readonly gate = deferred<number>();
    steps = 0;
    protected step(): Promise<number> {
      this.steps++;
      return this.gate.promise;
    }
  }

  it('logs nothing for a step that fails after stop(): a store closing under it is no failure', async () => {
    const logger = memoryLogger();
    const pruner = new GatedPruner(60_000, 10, logger);
    const pass = pruner.run();
    await vi.waitFor(() => expect(pruner.steps).toBe(1));
    pruner.stop();
    pruner.gate.reject(new Error('the database is closed'));
    expect(await pass).toBe(0);
    expect(logger.entries).toEqual([]);
  });
});

describe('the async engine', () => {
  it('times out an attempt of a timeoutSeconds longer than the clock check (fake timers)', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { handler, failures } = setup(() => {}, { timeoutSeconds: 3, maxAsyncRetryAttempts: 0 });
    const id = (await handler(asyncEvent(), context)).headers['x-fc-async-task-id'] as string;
    await vi.advanceTimersByTimeAsync(3_500);
    // Checked before drain(): an attempt whose timeout never fires would hold it for ever.
    expect((await handler.tasks.get(id))?.status).toBe('Failed');
    await handler.drain();
    expect(failures.map((f) => [f.requestContext.condition, f.responseContext.statusCode])).toEqual([
      ['InvocationError', 504],
    ]);
  });

  it("expires events by configure()'s maxAsyncEventAgeInSeconds (FC's PutAsyncInvokeConfig), not the handler's own", async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let calls = 0;
    const { handler, failures } = setup(
      (_req, res) => {
        calls++;
        res.end();
      },
      { maxAsyncEventAgeInSeconds: 3600 },
    );
    handler.engine?.configure({ maxAsyncEventAgeInSeconds: 2 });
    await handler(asyncEvent({ delay: '3' }), context);
    await vi.advanceTimersByTimeAsync(4_000);
    await handler.drain();
    expect(calls).toBe(0);
    expect(failures.map((f) => f.requestContext.condition)).toEqual(['EventAgeExceeded']);
  });
});

describe('a delivery a shutdown cut short, made again by the next start', () => {
  it('calls only the destinations that had not taken the record', async () => {
    const store = new MemoryTaskStore();
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store, queue: new PQueueDriver(2) }),
    };
    const took: string[] = [];
    const quick = (first: boolean) => () => void took.push(first ? 'quick, first start' : 'quick, next start');
    const first = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable, stopGraceMs: 20 },
      destinations: { onSuccess: [quick(true), () => new Promise<void>(() => {})] },
    });
    await first(asyncEvent({ taskId: 'half' }), context);
    await vi.waitFor(() => expect(took).toHaveLength(1));
    await first.close({ timeoutMs: 30, stopWithinMs: 200 });
    expect(store.get('half')).toMatchObject({ deliveryPending: true, deliveredTo: [0] });

    const slow: string[] = [];
    const second = createFcHandler(ok, {
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onSuccess: [quick(false), () => void slow.push('slow, next start')] },
    });
    await second.tasks.get('half');
    await second.drain();
    expect([...took, ...slow]).toEqual(['quick, first start', 'slow, next start']);
    await second.close();
  });
});

describe('an FC function error with an empty errorType', () => {
  it('is typed by its HTTP status, as a body without one is', async () => {
    const { handler, failures } = setup(
      (_req, res) => {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
        res.end('{"errorMessage":"boom","errorType":""}');
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent(), context);
    await handler.drain();
    expect(failures.map((f) => JSON.parse(f.responsePayload))).toEqual([
      { errorMessage: 'boom', errorType: 'HTTP500' },
    ]);
  });
});
