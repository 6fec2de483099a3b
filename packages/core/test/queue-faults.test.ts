import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createFcHandler,
  type DestinationRecord,
  deliverRecord,
  getInvocation,
  memory,
  PQueueDriver,
  silentLogger,
} from '../src/index.js';
import { asyncEvent, context, deferred, json, memoryLogger, ok, setup, tick, until } from './helpers.js';

/** Ref'd timers of this process (what keeps it from exiting). */
const liveTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

afterEach(() => {
  vi.useRealTimers();
});

describe('close() and retention', () => {
  it('close() leaves no timer holding the process open once stopped tasks settle', async () => {
    const started = deferred();
    const { handler, failures } = setup(
      (req, res) => {
        started.resolve();
        getInvocation(req)?.signal.addEventListener('abort', () => {
          res.statusCode = 499;
          res.end();
        });
      },
      { stopGraceMs: 60_000 },
    );
    const before = liveTimers();
    await handler(asyncEvent({ taskId: 'long' }), context);
    await started.promise;
    await handler.close({ timeoutMs: 20 });
    expect((await handler.tasks.get('long'))?.status).toBe('Stopped');
    expect(failures).toHaveLength(1);
    expect(liveTimers()).toBeLessThanOrEqual(before);
  });

  it('close() leaves no timer at all after a task and its destination call (fake timers count them)', async () => {
    vi.useFakeTimers();
    const { handler, successes } = setup(ok);
    await handler(asyncEvent({ taskId: 'counted' }), context);
    await vi.advanceTimersByTimeAsync(10);
    await handler.drain();
    expect(successes).toHaveLength(1);
    await handler.close();
    // The attempt's and the destination call's timeouts left their timers armed for nothing: they
    // fired into the closed engine a minute later, and `vi.getTimerCount()` read 1 in users' tests.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('deliverRecord() leaves no timer once the record is delivered', async () => {
    vi.useFakeTimers();
    const got: unknown[] = [];
    const result = await deliverRecord(
      (record) => void got.push(record),
      { requestId: 'r1' } as unknown as DestinationRecord,
      {
        logger: silentLogger,
      },
    );
    expect(result.status).toBe('Succeeded');
    expect(got).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a finished task past retentionMs is gone from get() even when nothing else finished', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { handler } = setup(ok, { backend: memory({ retentionMs: 60_000 }) });
    await handler(asyncEvent({ taskId: 'old' }), context);
    await vi.advanceTimersByTimeAsync(10);
    await handler.drain();
    expect((await handler.tasks.get('old'))?.status).toBe('Succeeded');
    vi.setSystemTime(1_700_000_000_000 + 120_000);
    expect(await handler.tasks.get('old')).toBeUndefined();
  });

  it('a finished task whose destination is still being called keeps its record and its id', async () => {
    const gate = deferred();
    const delivering = deferred();
    let calls = 0;
    const handler = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: memory({ maxTasks: 0 }) },
      destinations: {
        onSuccess: async () => {
          calls++;
          delivering.resolve();
          if (calls === 1) await gate.promise;
        },
      },
    });
    await handler(asyncEvent({ taskId: 'daily' }), context);
    await delivering.promise;
    // Past maxTasks, but its delivery is under way: still there, and the id is still taken.
    expect((await handler.tasks.get('daily'))?.status).toBe('Succeeded');
    expect((await handler(asyncEvent({ taskId: 'daily' }), context)).statusCode).toBe(409);
    gate.resolve();
    await handler.drain();
    expect(await handler.tasks.get('daily')).toBeUndefined();
    // Reused once gone: the new task is not touched by the old one's bookkeeping.
    expect((await handler(asyncEvent({ taskId: 'daily', delay: '100' }), context)).statusCode).toBe(202);
    const again = await handler.tasks.get('daily');
    expect(again?.status).toBe('Enqueued');
    expect(again?.destinationStatus).toBeUndefined();
    await handler.tasks.stop('daily');
    await handler.drain();
    expect(calls).toBe(1);
  });

  it('a finished task kept past maxTasks for its destination call goes once the call ends, not a task that finished after it', async () => {
    const gate = deferred();
    const calling = deferred();
    let slowRequestId: unknown;
    const handler = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: memory({ maxTasks: 1 }) },
      destinations: {
        onSuccess: async (record) => {
          if (record.requestContext.requestId !== slowRequestId) return;
          calling.resolve();
          await gate.promise;
        },
      },
    });
    slowRequestId = (await handler(asyncEvent({ taskId: 'slow_dest' }), context)).headers['x-fc-request-id'];
    await calling.promise;
    await handler(asyncEvent({ taskId: 'later' }), context);
    await vi.waitFor(async () => expect((await handler.tasks.get('later'))?.destinationStatus).toBe('Succeeded'), {
      timeout: 20_000,
    });
    // Two finished tasks for maxTasks 1: the first is kept only while its destination is called.
    expect((await handler.tasks.get('slow_dest'))?.status).toBe('Succeeded');
    gate.resolve();
    await handler.drain();
    // The oldest finished goes first: the one that finished later is the task kept.
    expect(await handler.tasks.get('slow_dest')).toBeUndefined();
    expect((await handler.tasks.get('later'))?.status).toBe('Succeeded');
    expect((await handler.tasks.list({})).tasks.map((t) => t.taskId)).toEqual(['later']);
    await handler.close();
  });
});

describe('bursts, delays, stop storms and attempt faults', () => {
  it('a burst in one turn: exactly maxQueuedTasks accepted, the rest 429, each accepted ends once', async () => {
    const { handler, successes, failures } = setup(ok, { concurrency: 1, maxQueuedTasks: 5 });
    const results = await Promise.all(Array.from({ length: 20 }, () => handler(asyncEvent(), context)));
    const codes = results.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 202)).toHaveLength(5);
    expect(codes.filter((c) => c === 429)).toHaveLength(15);
    const refused = results.find((r) => r.statusCode === 429);
    expect(refused?.headers['retry-after']).toBe('1');
    expect(json(refused as NonNullable<typeof refused>)).toMatchObject({ code: 'ResourceThrottled' });
    await handler.drain();
    expect(successes.length + failures.length).toBe(5);
  });

  it('delayed tasks count against maxQueuedTasks (docs: queued, delayed or backing off)', async () => {
    const { handler } = setup(ok, { maxQueuedTasks: 2 });
    expect((await handler(asyncEvent({ delay: '100' }), context)).statusCode).toBe(202);
    expect((await handler(asyncEvent({ delay: '100' }), context)).statusCode).toBe(202);
    const r = await handler(asyncEvent({ delay: '100' }), context);
    expect(r.statusCode).toBe(429);
    await handler.close({ timeoutMs: 10 });
  });

  it('3000 delayed tasks up to 3599 s, half stopped: the rest run once each, the stopped never', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const ran = new Map<string, number>();
    const { handler, successes, failures } = setup(
      (req, res) => {
        const id = getInvocation(req)?.taskId ?? '';
        ran.set(id, (ran.get(id) ?? 0) + 1);
        ok(req, res);
      },
      { concurrency: 20 },
    );
    const n = 3000;
    for (let i = 0; i < n; i++) {
      const r = await handler(asyncEvent({ taskId: `d${i}`, delay: String(1 + (i % 3599)) }), context);
      expect(r.statusCode).toBe(202);
    }
    for (let i = 0; i < n; i += 2) await handler.tasks.stop(`d${i}`);
    expect(handler.engine).toBeDefined();
    await vi.advanceTimersByTimeAsync(3_600_000);
    await handler.drain();
    expect(ran.size).toBe(n / 2);
    expect([...ran.values()].every((c) => c === 1)).toBe(true);
    expect(successes).toHaveLength(n / 2);
    expect(failures).toHaveLength(n / 2);
  }, 60_000);

  it('double stops of half the tasks racing close(): every task ends once, with one destination call', async () => {
    let call = 0;
    const { handler, successes, failures } = setup(
      (req, res) => {
        call++;
        const signal = getInvocation(req)?.signal;
        if (call % 3 === 0) {
          res.statusCode = 500;
          res.end();
          return;
        }
        const t = setTimeout(() => ok(req, res), 5 + (call % 7));
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          res.statusCode = 499;
          res.end();
        });
      },
      { concurrency: 4, maxAsyncRetryAttempts: 2, backoff: { baseMs: 5, maxMs: 10 }, stopGraceMs: 20 },
    );
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await handler(asyncEvent({ taskId: `s${i}`, delay: i % 10 === 0 ? '30' : undefined }), context);
      ids.push(r.headers['x-fc-async-task-id'] as string);
    }
    await tick(10);
    const stops = ids.flatMap((id, i) => (i % 2 === 0 ? [handler.tasks.stop(id), handler.tasks.stop(id)] : []));
    const closing = handler.close({ timeoutMs: 30 });
    await Promise.allSettled(stops);
    await closing;
    // Deliveries of tasks stopped by close() may still be under way: wait for every task's settle.
    await handler.drain();
    const calls = new Map<string, number>();
    for (const r of [...successes, ...failures])
      calls.set(r.requestContext.requestId, (calls.get(r.requestContext.requestId) ?? 0) + 1);
    expect(calls.size).toBe(200);
    expect([...calls.values()].every((c) => c === 1)).toBe(true);
    for (const id of ids) {
      const t = await handler.tasks.get(id);
      expect(['Succeeded', 'Failed', 'Stopped']).toContain(t?.status);
    }
  });

  it('a subscriber that throws is logged and the task still ends', async () => {
    const { handler, successes, logger } = setup(ok);
    handler.engine?.subscribe(() => {
      throw new Error('listener');
    });
    await handler(asyncEvent(), context);
    await handler.drain();
    expect(successes).toHaveLength(1);
    expect(logger.entries.some((e) => e.message === 'engine listener threw')).toBe(true);
  });

  it('an app throwing synchronously in every replay ends Failed with one onFailure', async () => {
    const { handler, failures } = setup(
      () => {
        throw new Error('boom');
      },
      { maxAsyncRetryAttempts: 1 },
    );
    await handler(asyncEvent({ taskId: 'x' }), context);
    await handler.drain();
    expect((await handler.tasks.get('x'))?.status).toBe('Failed');
    expect(failures).toHaveLength(1);
  });

  it('a response never ended is cut by timeoutSeconds, and the slot goes to the next task', async () => {
    const ran: string[] = [];
    const { handler, failures, successes } = setup(
      (req, res) => {
        const id = getInvocation(req)?.taskId ?? '';
        ran.push(id);
        if (id === 'hang') return;
        ok(req, res);
      },
      { concurrency: 1, timeoutSeconds: 0.05, maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent({ taskId: 'hang' }), context);
    await handler(asyncEvent({ taskId: 'next' }), context);
    await handler.drain();
    expect(ran).toEqual(['hang', 'next']);
    expect(failures).toHaveLength(1);
    expect(successes).toHaveLength(1);
  });

  it('a malformed or mistyped nextToken is a 400 InvalidArgument', async () => {
    const { handler } = setup(ok);
    for (const token of ['', 'x', Buffer.from('[1]').toString('base64url'), 42, null, {}]) {
      await expect(handler.tasks.list({ nextToken: token as string })).rejects.toMatchObject({
        code: 'InvalidArgument',
        statusCode: 400,
      });
    }
  });

  it('a nextToken is refused for another query (filters or sort order) but not for another page size', async () => {
    const { handler } = setup(ok);
    for (let i = 0; i < 6; i++) await handler(asyncEvent({ taskId: `job_${i}`, delay: '60' }), context);
    const first = await handler.tasks.list({ limit: 2, prefix: 'job_', sortOrderByTime: 'asc' });
    const token = first.nextToken as string;
    expect(token).toBeTypeOf('string');
    for (const other of [
      { sortOrderByTime: 'desc' as const, prefix: 'job_' },
      { sortOrderByTime: 'asc' as const },
      { sortOrderByTime: 'asc' as const, prefix: 'job_', status: 'Enqueued' as const },
      { sortOrderByTime: 'asc' as const, prefix: 'job_', startedTimeBegin: 0 },
    ]) {
      await expect(handler.tasks.list({ ...other, nextToken: token })).rejects.toMatchObject({
        code: 'InvalidArgument',
        statusCode: 400,
        message: expect.stringContaining('another query'),
      });
    }
    // The page size and includePayload may change between pages.
    const rest = await handler.tasks.list({
      limit: 10,
      prefix: 'job_',
      sortOrderByTime: 'asc',
      includePayload: true,
      nextToken: token,
    });
    expect([...first.tasks, ...rest.tasks].map((t) => t.taskId)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `job_${i}`));
  });

  it('paging stays stable while tasks finish and are pruned between pages', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const gates = new Map<string, () => void>();
    const { handler } = setup(
      (req, res) => {
        const id = getInvocation(req)?.taskId ?? '';
        gates.set(id, () => ok(req, res));
      },
      { concurrency: 100, backend: memory({ maxTasks: 5 }) },
    );
    for (let i = 0; i < 30; i++) {
      await handler(asyncEvent({ taskId: `p${String(i).padStart(2, '0')}` }), context);
      vi.advanceTimersByTime(10);
    }
    await vi.advanceTimersByTimeAsync(1);
    const seen: string[] = [];
    let page = await handler.tasks.list({ limit: 7, sortOrderByTime: 'asc' });
    seen.push(...page.tasks.map((t) => t.taskId));
    for (const [id, end] of gates) {
      if (id >= 'p20') continue;
      end();
      gates.delete(id);
    }
    await vi.advanceTimersByTimeAsync(1);
    while (page.nextToken) {
      page = await handler.tasks.list({ limit: 7, sortOrderByTime: 'asc', nextToken: page.nextToken });
      seen.push(...page.tasks.map((t) => t.taskId));
    }
    expect(seen.slice(0, 7)).toEqual(['p00', 'p01', 'p02', 'p03', 'p04', 'p05', 'p06']);
    expect(seen.slice(7)).toEqual([
      'p15',
      'p16',
      'p17',
      'p18',
      'p19',
      ...Array.from({ length: 10 }, (_, i) => `p${20 + i}`),
    ]);
    for (const [, end] of gates) end();
    await vi.advanceTimersByTimeAsync(1);
    await handler.drain();
  });
});

describe('runtime config and memory', () => {
  it("configure()'s destinations are called as well as the handler's own (FC's and the function's); none configured leaves the own", async () => {
    const { handler, successes } = setup(ok);
    const fromFc: unknown[] = [];
    handler.engine?.configure({ destinations: { onSuccess: (r) => void fromFc.push(r) } });
    await handler(asyncEvent({ taskId: 'both' }), context);
    await handler.drain();
    expect([successes.length, fromFc.length]).toEqual([1, 1]);
    expect((await handler.tasks.get('both'))?.destinationStatus).toBe('Succeeded');

    handler.engine?.configure({});
    await handler(asyncEvent({ taskId: 'own_only' }), context);
    await handler.drain();
    expect([successes.length, fromFc.length]).toEqual([2, 1]);
  });

  it('retries lowered by configure() during a backoff: the scheduled retry runs, then Failed once', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let calls = 0;
    const { handler, failures } = setup(
      (_req, res) => {
        calls++;
        res.statusCode = 500;
        res.end();
      },
      { maxAsyncRetryAttempts: 8, backoff: { baseMs: 1000, maxMs: 1000, jitter: 'none' } },
    );
    await handler(asyncEvent({ taskId: 'c' }), context);
    await vi.advanceTimersByTimeAsync(1500);
    expect(calls).toBe(2);
    handler.engine?.configure({ maxAsyncRetryAttempts: 1 });
    await vi.advanceTimersByTimeAsync(5000);
    await handler.drain();
    expect(calls).toBe(3);
    expect((await handler.tasks.get('c'))?.status).toBe('Failed');
    expect(failures).toHaveLength(1);
  });

  it('records and payloads of pruned tasks are garbage-collected (no queue, heap or map keeps them)', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    const refs: WeakRef<object>[] = [];
    const base = memory({ maxTasks: 0 });
    const backend = {
      ...base,
      create: (o: Parameters<typeof base.create>[0]) => {
        const made = base.create(o) as Awaited<ReturnType<typeof base.create>>;
        const insert = made.store.insert.bind(made.store);
        made.store.insert = (record) => {
          refs.push(new WeakRef(record));
          if (record.payload.body.length > 0) refs.push(new WeakRef(record.payload.body));
          return insert(record);
        };
        return made;
      },
    };
    let n = 0;
    const { handler } = setup(
      (req, res) => {
        n++;
        if (n % 4 === 0) throw new Error('x');
        if (n % 4 === 1) {
          getInvocation(req)?.signal.addEventListener('abort', () => {});
        }
        ok(req, res);
      },
      { backend, maxAsyncRetryAttempts: 0, concurrency: 3 },
      // A logger that keeps what it is given would keep the thrown errors, and their stack frames the
      // requests: a real one writes them out at once.
      { logger: silentLogger },
    );
    await handler(asyncEvent({ method: 'POST', body: 'warm' }), context);
    await handler.drain();
    refs.length = 0;
    // Listed once first: the memory store keeps its listing index in step from then on, and must let
    // the records it drops go too.
    await handler.tasks.list({});
    for (let i = 0; i < 50; i++) await handler(asyncEvent({ method: 'POST', body: 'x'.repeat(10_000) }), context);
    for (let i = 0; i < 5; i++) await handler(asyncEvent({ delay: '100' }), context);
    await tick(20);
    for (const t of (await handler.tasks.list({ status: 'Enqueued' })).tasks) await handler.tasks.stop(t.taskId);
    await handler.drain();
    // deref() keeps its target alive until the job ends: collect in fresh jobs, read once after.
    for (let i = 0; i < 3; i++) {
      await tick(0);
      gc();
    }
    const alive = refs.map((r, i) => [i, r.deref()] as const).filter(([, v]) => v !== undefined);
    expect(alive).toHaveLength(0);
  });
});

describe('maxQueuedTasks and stop', () => {
  it('stopping queued tasks frees their places in maxQueuedTasks', async () => {
    const gate = deferred();
    const running = deferred();
    const { handler, successes, failures } = setup(
      async (req, res) => {
        running.resolve();
        await gate.promise;
        ok(req, res);
      },
      { concurrency: 1, maxQueuedTasks: 3 },
    );
    await handler(asyncEvent({ taskId: 'busy' }), context);
    await running.promise;
    for (let i = 0; i < 3; i++) expect((await handler(asyncEvent({ taskId: `q${i}` }), context)).statusCode).toBe(202);
    expect((await handler(asyncEvent(), context)).statusCode).toBe(429);
    for (let i = 0; i < 3; i++) await handler.tasks.stop(`q${i}`);
    expect((await handler(asyncEvent({ taskId: 'room' }), context)).statusCode).toBe(202);
    gate.resolve();
    await handler.drain();
    expect(successes.map((r) => r.requestContext.requestId)).toHaveLength(2);
    expect(failures).toHaveLength(3);
  });
});

describe('the in-process queue and close() options', () => {
  it('PQueueDriver.cancel drops a job waiting for a slot, and the rest run in order', async () => {
    const gate = deferred();
    const ran: string[] = [];
    const queue = new PQueueDriver(1);
    queue.start(async ({ taskId }) => {
      ran.push(taskId);
      if (taskId === 'w0') await gate.promise;
      return undefined;
    });
    for (let i = 0; i < 3000; i++) queue.enqueue({ taskId: `w${i}` }, 0);
    await tick(5);
    expect(ran).toEqual(['w0']);
    expect(queue.pending()).toBe(2999);
    for (let i = 1; i < 3000; i += 2) expect(queue.cancel(`w${i}`)).toBe(true);
    expect(queue.cancel('w1')).toBe(false);
    expect(queue.cancel('w0')).toBe(false);
    expect(queue.pending()).toBe(1499);
    gate.resolve();
    await until('the queue to run what is left', () => queue.pending() + queue.running() === 0);
    expect(queue.pending()).toBe(0);
    expect(ran).toEqual(Array.from({ length: 1500 }, (_, i) => `w${2 * i}`));
  });

  it('close({ timeoutMs: Infinity }) waits for running tasks instead of stopping them at once', async () => {
    const { handler, successes } = setup(async (req, res) => {
      await tick(30);
      ok(req, res);
    });
    await handler(asyncEvent({ taskId: 'slow' }), context);
    await handler.close({ timeoutMs: Number.POSITIVE_INFINITY });
    expect((await handler.tasks.get('slow'))?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
  });

  it('close() with a timeoutMs that is not a number from 0 up rejects with a TypeError and keeps accepting', async () => {
    const { handler } = setup(ok);
    await expect(handler.close({ timeoutMs: 'soon' as unknown as number })).rejects.toThrow(
      new TypeError('Expected `timeoutMs` to be a number from 0 and up, got `soon`'),
    );
    await expect(handler.close({ timeoutMs: -1 })).rejects.toThrow(TypeError);
    expect((await handler(asyncEvent(), context)).statusCode).toBe(202);
    await handler.close();
  });
});
