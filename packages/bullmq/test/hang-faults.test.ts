import { type AsyncTask, createFcHandler, type FcHttpResult, silentLogger, TERMINAL_STATUSES } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { PENDING, within } from '@fc-async/test-kit/wait';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bullmq } from '../src/index.js';
import { keysOf } from '../src/keys.js';
import { RedisTaskStore } from '../src/store.js';
import { until } from './helpers.js';
import { type OwnRedis, ownRedis } from './redis-server.js';

// Redis frozen (SIGSTOP): its sockets stay open and nothing answers, unlike Redis down, where
// ioredis sees the connection drop. Every wait is raced against a bound, so a hang fails the test.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A redis-server of this test alone, resumed and killed after it. */
async function startRedis(): Promise<OwnRedis> {
  const redis = await ownRedis('hang');
  cleanups.push(() => redis.stop());
  return redis;
}

function instance(port: number, onSuccess: (requestId: string) => void) {
  const handler = createFcHandler((_req, res) => void setTimeout(() => res.end('ok'), 200), {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: 4,
      backoff: { baseMs: 10, maxMs: 20 },
      backend: bullmq({
        connection: { host: '127.0.0.1', port },
        commandTimeoutMs: 500,
        lockDurationMs: 1000,
        stalledIntervalMs: 500,
      }),
    },
    destinations: { onSuccess: (r) => void onSuccess(r.requestContext.requestId) },
  });
  // Bounded, so that redis-server is resumed and killed even if closing hangs.
  cleanups.unshift(() => within(handler.close({ timeoutMs: 500 }), 15_000));
  return handler;
}

describe('bullmq(): Redis frozen with its connections open', () => {
  it('an async request gets 503 RedisUnavailable instead of waiting; every 202 ends with one destination call', async () => {
    const redis = await startRedis();
    const calls = new Map<string, number>();
    const handler = instance(redis.port, (id) => calls.set(id, (calls.get(id) ?? 0) + 1));
    await handler.engine?.whenReady();
    const send = (ids: string[]) =>
      Promise.all(
        ids.map(
          async (id): Promise<[string, FcHttpResult | typeof PENDING]> => [
            id,
            await within(handler(asyncEvent(id)), 8000),
          ],
        ),
      );

    const before = await send(['before_0', 'before_1', 'before_2', 'before_3']);
    expect(before.map(([, r]) => (r === PENDING ? r : r.statusCode))).toEqual([202, 202, 202, 202]);
    redis.child.kill('SIGSTOP'); // the first tasks are running: their bookkeeping writes get no answer
    const during = await send(['during_0', 'during_1']);
    for (const [, result] of during) {
      expect(result === PENDING ? result : { status: result.statusCode, body: JSON.parse(result.body) }).toEqual({
        status: 503,
        body: {
          code: 'RedisUnavailable',
          message:
            'Redis did not answer in time; retry later (a retry with the same task id answers 409 if Redis took the task after all)',
        },
      });
    }
    // The task API answers too: a 503 RedisUnavailable, not an internal error.
    const taskApi = [
      () => handler.tasks.get('before_0'),
      () => handler.tasks.list(),
      () => handler.tasks.stop('not_cached'),
    ];
    for (const call of taskApi) {
      const error = await within(
        call().then(
          () => 'answered',
          (e: unknown) => e,
        ),
        8000,
      );
      expect(error).toMatchObject({
        code: 'RedisUnavailable',
        statusCode: 503,
        message: 'Redis did not answer in time; retry later',
      });
    }
    redis.child.kill('SIGCONT');
    const after = await send(['after_0', 'after_1']);
    expect(after.map(([, r]) => (r === PENDING ? r : r.statusCode))).toEqual([202, 202]);

    const accepted = [...before, ...after].map(([id]) => id);
    const refused = during.map(([id]) => id);
    const settled = (t: AsyncTask | undefined) =>
      t && TERMINAL_STATUSES.has(t.status) && t.destinationStatus !== undefined;
    await until(
      'every accepted task, and every refused one Redis stored after all, to end and be delivered',
      async () => {
        const tasks = await Promise.all(accepted.map((id) => handler.tasks.get(id)));
        const late = await Promise.all(refused.map((id) => handler.tasks.get(id)));
        return tasks.every(settled) && late.every((t) => t === undefined || settled(t));
      },
      20_000,
    );
    for (const id of accepted) {
      const task = await handler.tasks.get(id);
      expect([id, task?.status, calls.get(task?.requestId ?? '')]).toEqual([id, 'Succeeded', 1]);
    }
    // Refused with a 503, stored once Redis woke (at least once): never delivered twice.
    for (const [id] of during) {
      const task = await handler.tasks.get(id);
      expect([id, calls.get(task?.requestId ?? '') ?? 0]).not.toContainEqual(2);
    }
  }, 45_000);

  it('handler.drain() and handler.close({ timeoutMs }) end while Redis stays frozen', async () => {
    const redis = await startRedis();
    const handler = instance(redis.port, () => {});
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('frozen_close'))).statusCode).toBe(202);
    redis.child.kill('SIGSTOP'); // the task is running: its end gets no answer
    expect(
      await within(
        handler.drain().then(() => 'drained'),
        10_000,
      ),
    ).toBe('drained');
    expect(
      await within(
        handler.close({ timeoutMs: 500 }).then(() => 'closed'),
        15_000,
      ),
    ).toBe('closed');
  }, 35_000);
});

describe("bullmq(): Redis frozen as a task's claim or end is sent", () => {
  // The defaults of `fc-async dev --redis` (commandTimeoutMs 5 s, a 30 s lock, stopGraceMs 10 s),
  // Redis frozen (SIGSTOP) the moment the write goes: the engine waits for that attempt up to its
  // stop grace, and what comes after (the worker's close, the connections' QUIT) must fit in what
  // is left of the bound docs/async.md gives close(): the deadline plus 12 s.
  it.each([
    ['claim', 'Running', 'Running'],
    ['end', 'Succeeded', 'Succeeded'],
  ])(
    'its %s: close({ timeoutMs: 500 }) ends within 12.5 s, and the task is kept',
    async (_write, to, kept) => {
      const redis = await startRedis();
      const prefix = `frozen-${to.toLowerCase()}`;
      const handler = createFcHandler((_req, res) => void res.end('ok'), {
        logger: silentLogger,
        env: {},
        async: { mode: 'local', backend: bullmq({ connection: { host: '127.0.0.1', port: redis.port }, prefix }) },
      });
      cleanups.unshift(() => within(handler.close({ timeoutMs: 500 }), 15_000));
      const transition = RedisTaskStore.prototype.transition;
      let froze: () => void = () => {};
      const frozen = new Promise<void>((resolve) => {
        froze = resolve;
      });
      const spy = vi.spyOn(RedisTaskStore.prototype, 'transition').mockImplementation(function (
        this: RedisTaskStore,
        ...args
      ) {
        if (args[1] === to) {
          redis.child.kill('SIGSTOP');
          froze();
        }
        return transition.apply(this, args);
      });
      cleanups.push(() => spy.mockRestore());
      await handler.engine?.whenReady();
      expect((await handler(asyncEvent('frozen_write'))).statusCode).toBe(202);
      if ((await within(frozen, 10_000)) === PENDING) expect.fail(`the task's ${to} write was not sent within 10 s`);
      expect(
        await within(
          handler.close({ timeoutMs: 500 }).then(() => 'closed'),
          12_500,
        ),
      ).toBe('closed');
      // Redis wakes and runs what it was sent: the task is there, a claimed one with its job (it
      // goes back to the queue once its lock expires).
      redis.child.kill('SIGCONT');
      const admin = new Redis({ host: '127.0.0.1', port: redis.port });
      cleanups.push(() => admin.quit());
      const keys = keysOf(prefix);
      expect(await admin.hget(keys.task('frozen_write'), 's')).toBe(kept);
      if (to === 'Running') expect(await admin.exists(keys.job('frozen_write'))).toBe(1);
    },
    40_000,
  );
});

describe('bullmq({ commandTimeoutMs })', () => {
  it('is validated eagerly, as the other timers are', () => {
    const connection = 'redis://127.0.0.1:1';
    expect(() => bullmq({ connection, commandTimeoutMs: 0 })).toThrow(
      new TypeError('Expected `commandTimeoutMs` to be an integer from 1 and up, got `0`'),
    );
    expect(() => bullmq({ connection, commandTimeoutMs: 2 ** 31 })).toThrow(
      new TypeError('Expected `commandTimeoutMs` to be an integer from 1 to 2147483647, got `2147483648`'),
    );
  });

  it("bounds commands also when the URL's query names an ioredis `commandTimeout`: commandTimeoutMs wins", async () => {
    const redis = await startRedis();
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        // ioredis lets the query win over the options beside the URL, and reads it as text: a
        // `commandTimeout` of '600000' bounded nothing, so a command waited for a frozen Redis forever.
        backend: bullmq({
          connection: `redis://127.0.0.1:${redis.port}/?commandTimeout=600000`,
          commandTimeoutMs: 300,
        }),
      },
    });
    cleanups.unshift(() => within(handler.close({ timeoutMs: 500 }), 15_000));
    await handler.engine?.whenReady();
    redis.child.kill('SIGSTOP');
    const answer = await within(
      handler.tasks.get('never_seen').then(
        () => 'answered',
        (e: unknown) => e,
      ),
      8000,
    );
    expect(answer).toMatchObject({ code: 'RedisUnavailable', statusCode: 503 });
  });
});

describe('bullmq(): the log while Redis stays frozen', () => {
  it('warns once per outage that waiting tasks could not be counted, not once a second', async () => {
    const redis = await startRedis();
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger,
      env: {},
      async: {
        mode: 'local',
        backend: bullmq({ connection: { host: '127.0.0.1', port: redis.port }, commandTimeoutMs: 300 }),
      },
    });
    cleanups.unshift(() => within(handler.close({ timeoutMs: 500 }), 15_000));
    // The counts Redis answered: the end of an outage is one answered, not a fixed pause (1.5 s for
    // a count due every second left half a second to a slower machine; shorter, the count missed it).
    let answered = 0;
    const getJobCounts = Queue.prototype.getJobCounts;
    const spy = vi.spyOn(Queue.prototype, 'getJobCounts').mockImplementation(async function (this: Queue, ...types) {
      const counts = await getJobCounts.apply(this, types);
      answered++;
      return counts;
    });
    cleanups.push(() => spy.mockRestore());
    await handler.engine?.whenReady();
    const counted = () => warnings.filter((m) => m === 'counting waiting async tasks failed').length;
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    redis.child.kill('SIGSTOP');
    await until('the first failed count to warn', () => counted() === 1, 10_000);
    const missed = answered;
    await pause(2500); // the count runs every second: two or three more of them fail, unsaid
    expect(answered).toBe(missed);
    expect(counted()).toBe(1);
    redis.child.kill('SIGCONT');
    await until('a count answered: the outage is over', () => answered > missed, 10_000);
    redis.child.kill('SIGSTOP');
    await until("the second outage's warning", () => counted() === 2, 10_000);
    redis.child.kill('SIGCONT');
    expect(counted()).toBe(2);
  });
});
