import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AsyncTask, createFcHandler, type FcHttpResult, getInvocation, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { PENDING, within } from '@fc-async/test-kit/wait';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { uniquePrefix, until } from './helpers.js';
import { type OwnRedis, ownRedis } from './redis-server.js';

// Redis slow rather than gone: every client paused (CLIENT PAUSE) for less than commandTimeoutMs,
// as a long save, a failover or a slow command on a shared Redis does. Nothing is refused then:
// what came meanwhile waits for Redis and is answered once it is back. The pause is of a
// redis-server of this file alone: the run's shared one serves other files at the same time,
// whose short job locks (200 to 500 ms) a pause of it would expire under them.

let redis: OwnRedis;
let url: string;

beforeAll(async () => {
  redis = await ownRedis('slow');
  url = redis.url;
});

afterAll(async () => {
  await redis?.stop();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('bullmq(): Redis paused for less than commandTimeoutMs', () => {
  it('accepts made during the pause answer 202 after it, the task API answers, every task ends once', async () => {
    const calls = new Map<string, number>();
    // 'long' runs until it is stopped; the others take 100 ms.
    const app = (req: IncomingMessage, res: ServerResponse) => {
      const invocation = getInvocation(req);
      if (invocation?.taskId !== 'long') return void setTimeout(() => res.end('ok'), 100);
      invocation.signal?.addEventListener('abort', () => res.end('stopped'));
    };
    const handler = createFcHandler(app, {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        concurrency: 4,
        backend: bullmq({ connection: url, prefix: uniquePrefix(), commandTimeoutMs: 10_000 }),
      },
      destinations: {
        onSuccess: (r) => void calls.set(r.requestContext.requestId, (calls.get(r.requestContext.requestId) ?? 0) + 1),
      },
    });
    cleanups.push(() => within(handler.close({ timeoutMs: 1000 }), 15_000));
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('before'))).statusCode).toBe(202);
    expect((await handler(asyncEvent('long'))).statusCode).toBe(202);
    await until('the first task to end', async () => (await handler.tasks.get('before'))?.status === 'Succeeded');
    await until('the long task to run', async () => (await handler.tasks.get('long'))?.status === 'Running');

    const admin = new Redis(url);
    cleanups.push(() => admin.quit());
    // Every client, this one too: its answer comes at once, then nothing answers for 1.5 s.
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
    const sends = Array.from({ length: 10 }, (_, i) => within(handler(asyncEvent(`paused_${i}`)), 8000));
    const reads = [
      within(handler.tasks.get('before'), 8000),
      within(handler.tasks.list(), 8000),
      within(handler.tasks.stop('long'), 8000),
    ] as const;
    const answers = (await Promise.all(sends)).map((r) => (r === PENDING ? r : (r as FcHttpResult).statusCode));
    expect(answers).toEqual(Array(10).fill(202));
    const [got, listed, stopped] = await Promise.all(reads);
    expect((got as AsyncTask | typeof PENDING) === PENDING ? got : (got as AsyncTask).status).toBe('Succeeded');
    expect(listed === PENDING ? listed : listed.tasks.some((t) => t.taskId === 'before')).toBe(true);
    expect(stopped === PENDING ? stopped : ['Stopping', 'Stopped'].includes(stopped.status)).toBe(true);

    const ids = Array.from({ length: 10 }, (_, i) => `paused_${i}`);
    await until(
      'every task accepted during the pause to end and be delivered',
      async () => {
        const tasks = await Promise.all(ids.map((id) => handler.tasks.get(id)));
        return tasks.every((t) => t?.status === 'Succeeded' && t.destinationStatus !== undefined);
      },
      20_000,
    );
    for (const id of ids) {
      const task = await handler.tasks.get(id);
      expect([id, calls.get(task?.requestId ?? '')]).toEqual([id, 1]);
    }
    await until('the long task to be Stopped', async () => (await handler.tasks.get('long'))?.status === 'Stopped');
  }, 60_000);
});
