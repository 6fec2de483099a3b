import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AsyncTask, createFcHandler, type DestinationRecord, getInvocation, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import { PENDING, within } from '@fc-async/test-kit/wait';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { bullmq } from '../src/index.js';
import { keysOf } from '../src/keys.js';
import { RedisTaskStore } from '../src/store.js';
import { uniquePrefix, until } from './helpers.js';
import { type OwnRedis, ownRedis } from './redis-server.js';

// Redis stalled past commandTimeoutMs (CLIENT PAUSE ALL on a redis-server of this file alone, as a
// long save, a failover or DEBUG SLEEP would stall it): a command sent meanwhile fails on the
// client, and Redis still runs it when it wakes. A take or a claim whose answer was lost that way
// must neither leave its task waiting for stalled-job recovery nor count an attempt never started.

let redis: OwnRedis;
let url: string;
let admin: Redis;

beforeAll(async () => {
  redis = await ownRedis('stall');
  url = redis.url;
  admin = new Redis(url);
});

afterAll(async () => {
  await admin?.quit();
  await redis?.stop();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  // Never leave Redis paused for the next test, whatever this one did.
  await admin.call('CLIENT', 'UNPAUSE');
  for (const c of cleanups.splice(0)) await c();
});

/** Every client of the file's Redis paused for `ms`; resolves once the pause is in effect. */
async function stall(ms: number): Promise<void> {
  await admin.call('CLIENT', 'PAUSE', String(ms), 'ALL');
}

/** Stalls Redis for `ms` as the first claim of `taskId` (its move to Running) is sent, so that its answer is lost. */
function stallFirstClaim(taskId: string, ms: number): void {
  const transition = RedisTaskStore.prototype.transition;
  let stalled = false;
  const spy = vi.spyOn(RedisTaskStore.prototype, 'transition').mockImplementation(async function (
    this: RedisTaskStore,
    ...args
  ) {
    if (args[0] === taskId && args[1] === 'Running' && !stalled) {
      stalled = true;
      await stall(ms);
    }
    return transition.apply(this, args);
  });
  cleanups.push(() => spy.mockRestore());
}

/** An app that answers at once and counts its runs per task id. */
function countingApp() {
  const runs = new Map<string, number>();
  const app = (req: IncomingMessage, res: ServerResponse) => {
    const taskId = getInvocation(req)?.taskId ?? '';
    runs.set(taskId, (runs.get(taskId) ?? 0) + 1);
    res.end('ok');
  };
  return { runs, app };
}

/** The task, or `undefined` while Redis does not answer (a poll during the stall). */
async function status(handler: { tasks: { get(id: string): Promise<AsyncTask | undefined> } }, id: string) {
  return handler.tasks.get(id).catch(() => undefined);
}

/**
 * A store on its own connections to the file's Redis, whose commands time out after `commandTimeout` ms
 * and whose unanswered claims are read back for `confirmWithinMs` (the store's default when not given).
 */
async function storeOn(prefix: string, commandTimeout: number, confirmWithinMs?: number): Promise<RedisTaskStore> {
  const redis = new Redis(url, { commandTimeout });
  const store = new RedisTaskStore(redis, redis.duplicate(), keysOf(prefix), true, confirmWithinMs);
  await store.listen();
  cleanups.push(() => store.close());
  return store;
}

const claim = { from: ['Enqueued' as const], via: 'Dequeued' as const, patch: { attempts: 1, alreadyRetriedTimes: 0 } };

describe('RedisTaskStore: a claim Redis answers past commandTimeout', () => {
  it('that won is confirmed once Redis answers, not reported as failed', async () => {
    const store = await storeOn(uniquePrefix(), 300);
    await store.insert(record('t_1'));
    await stall(1500);
    const claimed = await within(store.transition('t_1', 'Running', claim), 10_000);
    expect(claimed === PENDING ? claimed : claimed?.status).toBe('Running');
    const stored = await store.get('t_1');
    expect([stored?.status, stored?.attempts]).toEqual(['Running', 1]);
  });

  it('that lost (another instance claimed the task first) reports the loss, not a win', async () => {
    const prefix = uniquePrefix();
    const a = await storeOn(prefix, 300);
    const b = await storeOn(prefix, 5000);
    await a.insert(record('t_1')); // cached on a: its claim goes out without a read, and loses
    expect((await b.transition('t_1', 'Running', claim))?.status).toBe('Running');
    await stall(1500);
    expect(await within(a.transition('t_1', 'Running', claim), 10_000)).toBeUndefined();
    const stored = await a.get('t_1');
    expect([stored?.status, stored?.attempts]).toEqual(['Running', 1]);
  });

  it('that won is confirmed however many reads Redis leaves unanswered within the lock (5 s stall, reads of 300 ms)', async () => {
    const store = await storeOn(uniquePrefix(), 300);
    await store.insert(record('t_1'));
    await stall(5000);
    const claimed = await within(store.transition('t_1', 'Running', claim), 15_000);
    expect(claimed === PENDING ? claimed : claimed?.status).toBe('Running');
  });

  it('is given up on past confirmWithinMs (the job lock), with the 503 of the unanswered claim', async () => {
    const store = await storeOn(uniquePrefix(), 300, 1000);
    await store.insert(record('t_1'));
    await stall(4000);
    // Answered once Redis wakes, it would resolve with the claim: it rejects before.
    await expect(within(store.transition('t_1', 'Running', claim), 10_000)).rejects.toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
    });
  });
});

describe('bullmq(): Redis stalled past commandTimeoutMs while a worker takes or claims a task', () => {
  /** One instance, one attempt at a time, commandTimeoutMs 1000 and the default lock and stalled check (30 s). */
  function instance(
    app: (req: IncomingMessage, res: ServerResponse) => void,
    options: { commandTimeoutMs?: number; maxAsyncRetryAttempts?: number } = {},
  ) {
    const warnings: string[] = [];
    const calls = new Map<string, number>();
    const count = (r: DestinationRecord) =>
      void calls.set(r.requestContext.requestId, (calls.get(r.requestContext.requestId) ?? 0) + 1);
    const handler = createFcHandler(app, {
      logger: { ...silentLogger, warn: (message: string) => void warnings.push(message) },
      env: {},
      async: {
        mode: 'local',
        concurrency: 1,
        maxAsyncRetryAttempts: options.maxAsyncRetryAttempts,
        backend: bullmq({
          connection: url,
          prefix: uniquePrefix(),
          commandTimeoutMs: options.commandTimeoutMs ?? 1000,
        }),
      },
      destinations: { onSuccess: count, onFailure: count },
    });
    cleanups.unshift(() => within(handler.close({ timeoutMs: 1000 }), 15_000));
    return { handler, warnings, calls };
  }

  it('a job taken by a command whose answer was lost runs once Redis answers, not after its lock expires', async () => {
    const runs = new Map<string, number>();
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { handler, calls } = instance((req, res) => {
      const taskId = getInvocation(req)?.taskId ?? '';
      runs.set(taskId, (runs.get(taskId) ?? 0) + 1);
      if (taskId === 'first') void released.then(() => res.end('ok'));
      else res.end('ok');
    });
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('first'))).statusCode).toBe(202);
    await until('the first task to run', async () => (await handler.tasks.get('first'))?.status === 'Running');
    expect((await handler(asyncEvent('second'))).statusCode).toBe(202);
    // Redis stalls as the first attempt ends: its end is not answered in time, then neither is the
    // retry that writes it again and takes the second task's job with it, though Redis runs both
    // when it wakes: the second job is then active, locked for 30 s by a take the worker gave up on.
    await stall(4000);
    release();
    await until(
      'the second task to run once Redis answers, well before its lock (30 s) expires',
      async () => (await status(handler, 'second'))?.status === 'Succeeded',
      20_000,
    );
    await until('both tasks to be delivered', async () => {
      const tasks = await Promise.all(['first', 'second'].map((id) => status(handler, id)));
      return tasks.every((t) => t?.status === 'Succeeded' && t.destinationStatus !== undefined);
    });
    for (const id of ['first', 'second']) {
      const task = await handler.tasks.get(id);
      expect([id, runs.get(id), task?.alreadyRetriedTimes, calls.get(task?.requestId ?? '')]).toEqual([id, 1, 0, 1]);
    }
  }, 60_000);

  it('a task whose claim answer was lost runs in that attempt, counted once, not as an interrupted one', async () => {
    const { runs, app } = countingApp();
    const { handler, warnings, calls } = instance(app);
    // The task's first claim is sent during a stall of 2.5 s: its answer is lost (commandTimeoutMs 1000).
    stallFirstClaim('claimed', 2500);
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('claimed'))).statusCode).toBe(202);
    await until(
      'the task to end and be delivered',
      async () => {
        const task = await status(handler, 'claimed');
        return task?.status === 'Succeeded' && task.destinationStatus !== undefined;
      },
      20_000,
    );
    const task = await handler.tasks.get('claimed');
    expect([runs.get('claimed'), task?.alreadyRetriedTimes, calls.get(task?.requestId ?? '')]).toEqual([1, 0, 1]);
    expect(warnings).not.toContain('async attempt interrupted');
  }, 60_000);

  it('a task whose claim is sent in a stall longer than ten reads (within the lock) runs; with no retries, it does not fail unrun', async () => {
    const { runs, app } = countingApp();
    const { handler, warnings, calls } = instance(app, { commandTimeoutMs: 300, maxAsyncRetryAttempts: 0 });
    // The claim is sent during a stall of 5 s: past ten confirming reads of 300 ms each, well within the lock (30 s).
    stallFirstClaim('claimed', 5000);
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('claimed'))).statusCode).toBe(202);
    await until(
      'the task to end and be delivered',
      async () => {
        const task = await status(handler, 'claimed');
        return task !== undefined && task.status !== 'Running' && task.destinationStatus !== undefined;
      },
      30_000,
    );
    const task = await handler.tasks.get('claimed');
    expect([task?.status, runs.get('claimed'), task?.alreadyRetriedTimes, calls.get(task?.requestId ?? '')]).toEqual([
      'Succeeded',
      1,
      0,
      1,
    ]);
    expect(warnings).not.toContain('async attempt interrupted');
  }, 60_000);
});
