import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFcHandler, type FcHttpResult, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { freePort } from '@fc-async/test-kit/net';
import { afterEach, describe, expect, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { countingServer, expectEachSucceededOnce, until } from './helpers.js';
import { spawnRedis } from './redis-server.js';

const cleanups: (() => unknown)[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** A redis-server of this test alone that fsyncs every write (a 202 survives it being killed). */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = await spawnRedis(port, dir, ['--appendonly', 'yes', '--appendfsync', 'always']);
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  });
  return child;
}

function redisDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-faults-redis-'));
  dirs.push(dir);
  return dir;
}

describe('bullmq(): Redis stopped mid-burst, then back', () => {
  it('requests during the outage get 503 RedisUnavailable; every 202 ends with exactly one destination call', async () => {
    const dir = redisDir();
    const port = await freePort();
    let redis = await startRedis(port, dir);
    const calls = new Map<string, number>();
    const count = (requestId: string) => calls.set(requestId, (calls.get(requestId) ?? 0) + 1);
    const handler = createFcHandler((_req, res) => void setTimeout(() => res.end('ok'), 50), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        concurrency: 4,
        backoff: { baseMs: 10, maxMs: 20 },
        backend: bullmq({
          // Reconnect every 50 ms: a command gives up after 20 tries, about a second.
          connection: { host: '127.0.0.1', port, retryStrategy: () => 50 },
          lockDurationMs: 1000,
          stalledIntervalMs: 500,
        }),
      },
      destinations: { onSuccess: (r) => void count(r.requestContext.requestId) },
    });
    // Bounded, so that the redis-servers are killed even if closing hangs.
    cleanups.unshift(() => Promise.race([handler.close({ timeoutMs: 1000 }), sleep(20_000)]));
    await handler.engine?.whenReady();
    const burst = (name: string) =>
      Promise.all(
        Array.from({ length: 10 }, async (_, i): Promise<[string, FcHttpResult]> => {
          const id = `${name}_${i}`;
          return [id, await handler(asyncEvent(id))];
        }),
      );

    const before = await burst('before');
    redis.kill('SIGKILL'); // mid-burst: attempts of the first burst are running
    await once(redis, 'exit');
    const during = await burst('during');
    redis = await startRedis(port, dir);
    const after = await burst('after');

    for (const [, result] of during) {
      if (result.statusCode === 202) continue; // kept by Redis: a 202 is fine then
      expect({ status: result.statusCode, body: JSON.parse(result.body) }).toEqual({
        status: 503,
        body: { code: 'RedisUnavailable', message: 'Redis did not take the task; it was not accepted, retry later' },
      });
    }
    expect(during.some(([, r]) => r.statusCode === 503)).toBe(true);
    const accepted = [...before, ...during, ...after].filter(([, r]) => r.statusCode === 202).map(([id]) => id);
    expect(accepted.length).toBeGreaterThanOrEqual(20);
    await expectEachSucceededOnce(handler, accepted, calls);
  });

  it('the task API answers 503 RedisUnavailable while Redis is down, not an internal error', async () => {
    const port = await freePort();
    const redis = await startRedis(port, redisDir());
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        backend: bullmq({ connection: { host: '127.0.0.1', port, retryStrategy: () => 50 } }),
      },
    });
    cleanups.unshift(() => handler.close({ timeoutMs: 500 }));
    expect((await handler(asyncEvent('before_outage'))).statusCode).toBe(202);
    await until('the task to end', async () => (await handler.tasks.get('before_outage'))?.status === 'Succeeded');
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    // Each call gives up once its connection has tried 20 times to reconnect (about a second).
    for (const call of [
      () => handler.tasks.get('before_outage'),
      () => handler.tasks.list(),
      () => handler.tasks.stop('not_cached'),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: 'RedisUnavailable',
        statusCode: 503,
        message: 'Redis did not answer in time; retry later',
      });
    }
  });

  it('handler.close() with Redis gone while tasks run still ends, bounded', async () => {
    const port = await freePort();
    const redis = await startRedis(port, redisDir());
    const handler = createFcHandler((_req, res) => void setTimeout(() => res.end('ok'), 50), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        concurrency: 4,
        backend: bullmq({ connection: { host: '127.0.0.1', port, retryStrategy: () => 50 } }),
      },
    });
    await handler.engine?.whenReady();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => handler(asyncEvent(`t_${i}`))));
    expect(results.map((r) => r.statusCode)).toEqual(Array(10).fill(202));
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('still closing after 20 s'), 20_000);
    });
    const closed = handler.close({ timeoutMs: 500 }).then(() => 'closed');
    expect(await Promise.race([closed, bound])).toBe('closed');
    clearTimeout(timer);
    // Closed is closed: no connection of the instance (the worker's blocking ones included) keeps
    // trying to reach Redis, which would keep the process alive.
    const server = await countingServer(port);
    cleanups.push(() => server.close());
    await sleep(1000);
    expect(server.count()).toBe(0);
  });
});

describe('bullmq(): Redis down when the instance starts, up later', () => {
  it('answers 503 RedisUnavailable until Redis is up, then accepts and runs tasks, without a restart', async () => {
    const dir = redisDir();
    const port = await freePort(); // nothing listens there yet
    const delivered: string[] = [];
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        backend: bullmq({ connection: { host: '127.0.0.1', port }, connectTimeoutMs: 300 }),
      },
      destinations: { onSuccess: (r) => void delivered.push(r.requestContext.requestId) },
    });
    cleanups.unshift(() => Promise.race([handler.close({ timeoutMs: 1000 }), sleep(20_000)]));
    const early = await handler(asyncEvent('early'));
    expect([early.statusCode, early.headers['retry-after'], JSON.parse(early.body)]).toEqual([
      503,
      '1',
      { code: 'RedisUnavailable', message: 'Redis did not answer within 300 ms' },
    ]);
    await expect(handler.tasks.get('early')).rejects.toMatchObject({ code: 'RedisUnavailable', statusCode: 503 });

    await startRedis(port, dir);
    // Within a second of the failed try the answer is that try's 503; the next demand tries again.
    let late: FcHttpResult | undefined;
    await until(
      'a request accepted once Redis is up',
      async () => {
        late = await handler(asyncEvent('late'));
        if (late.statusCode !== 202) expect(JSON.parse(late.body)).toMatchObject({ code: 'RedisUnavailable' });
        return late.statusCode === 202;
      },
      15_000,
    );
    const requestId = late?.headers['x-fc-request-id'];
    await until('the task ran', async () => (await handler.tasks.get('late'))?.status === 'Succeeded', 15_000);
    await until('its destination was called', () => delivered.length === 1, 15_000);
    expect(delivered).toEqual([requestId]);
    expect(await handler.tasks.get('early')).toBeUndefined();
  });
});
