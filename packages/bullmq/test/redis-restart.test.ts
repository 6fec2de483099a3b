import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFcHandler, type FcHttpResult, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { freePort } from '@fc-async/test-kit/net';
import { within } from '@fc-async/test-kit/wait';
import { afterEach, describe, expect, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { expectEachSucceededOnce, until } from './helpers.js';
import { spawnRedis } from './redis-server.js';

// Redis restarted on its port while tasks are queued and running, as an operator (or a crash)
// does it, with each persistence setting: what a 202 given before the restart is worth.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A redis-server of this test alone on `port`, its files in `dir`; killed after the test. */
async function startRedis(port: number, dir: string, persistence: readonly string[]): Promise<ChildProcess> {
  const child = await spawnRedis(port, dir, persistence);
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  });
  return child;
}

/** One instance whose attempts take 3 s, tasks `before_*` accepted, some running, when Redis goes. */
async function scenario(persistence: readonly string[], kill: 'SIGKILL' | 'SIGTERM') {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-restart-redis-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let redis = await startRedis(port, dir, persistence);
  const calls = new Map<string, number>();
  const handler = createFcHandler((_req, res) => void setTimeout(() => res.end('ok'), 3000), {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: 4,
      backoff: { baseMs: 10, maxMs: 20 },
      backend: bullmq({
        connection: { host: '127.0.0.1', port, retryStrategy: () => 50 },
        lockDurationMs: 1000,
        stalledIntervalMs: 500,
      }),
    },
    destinations: {
      onSuccess: (r) => void calls.set(r.requestContext.requestId, (calls.get(r.requestContext.requestId) ?? 0) + 1),
    },
  });
  cleanups.unshift(() => within(handler.close({ timeoutMs: 1000 }), 20_000));
  await handler.engine?.whenReady();
  const send = async (id: string): Promise<FcHttpResult | string> =>
    (await within(handler(asyncEvent(id)), 15_000)) as FcHttpResult | string;
  const before: string[] = [];
  for (let i = 0; i < 8; i++) {
    expect(await send(`before_${i}`)).toMatchObject({ statusCode: 202 });
    before.push(`before_${i}`);
  }
  await until('four tasks to run', async () => {
    const tasks = await Promise.all(before.map((id) => handler.tasks.get(id)));
    return tasks.filter((t) => t?.status === 'Running').length === 4;
  });
  // A second for `appendfsync everysec` to write the accepts out, as a real outage would leave.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  redis.kill(kill);
  await once(redis, 'exit');
  const during = await send('during_0');
  expect(during).toMatchObject({ statusCode: 503 });
  expect(JSON.parse((during as FcHttpResult).body)).toMatchObject({ code: 'RedisUnavailable' });
  redis = await startRedis(port, dir, persistence);
  const after = ['after_0', 'after_1'];
  for (const id of after) expect(await send(id)).toMatchObject({ statusCode: 202 });
  return { handler, calls, before, after };
}

describe('bullmq(): Redis restarted while tasks are queued and running', () => {
  for (const [name, persistence, kill] of [
    ['AOF, appendfsync everysec, killed', ['--appendonly', 'yes', '--appendfsync', 'everysec'], 'SIGKILL'],
    ['RDB snapshot on shutdown, stopped with SIGTERM', ['--appendonly', 'no', '--save', '3600 1'], 'SIGTERM'],
  ] as const) {
    it(`with persistence (${name}): every 202 given before the restart ends once, with one destination call`, async () => {
      const { handler, calls, before, after } = await scenario(persistence, kill);
      const ids = [...before, ...after];
      await expectEachSucceededOnce(handler, ids, calls);
    }, 90_000);
  }

  it('without persistence: the tasks accepted before are gone, unannounced; the instance runs new ones and goes quiet', async () => {
    const { handler, calls, before, after } = await scenario(['--appendonly', 'no'], 'SIGKILL');
    await until(
      'the tasks accepted after the restart to end and be delivered',
      async () => {
        const tasks = await Promise.all(after.map((id) => handler.tasks.get(id)));
        return tasks.every((t) => t?.status === 'Succeeded' && t.destinationStatus !== undefined);
      },
      20_000,
    );
    // What docs/async.md says: a Redis that keeps nothing loses every task it held, running ones
    // too, with no onFailure call; the attempts that were running end without a word to anyone.
    for (const id of before) expect([id, await handler.tasks.get(id)]).toEqual([id, undefined]);
    expect((await handler.tasks.list()).tasks.map((t) => t.taskId).sort()).toEqual(after);
    expect([...calls.keys()].length).toBe(2);
    // The attempts cut off from their records are given up, not written again and again: the
    // instance has nothing left in hand.
    expect(await within(handler.drain(), 15_000)).toBeUndefined();
  }, 90_000);
});
