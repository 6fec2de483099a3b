import type { IncomingMessage, ServerResponse } from 'node:http';
import { createFcHandler, type DestinationRecord, type FcHandler, getInvocation, silentLogger } from '@fc-async/core';
import { listAllTasks } from '@fc-async/test-kit/fc-server';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { type BullmqBackendOptions, bullmq } from '../src/index.js';
import { until } from './helpers.js';

// What the tests of bullmq() on a Redis Cluster share (cluster.test.ts: one node behind which a
// proxy's rules hold; redis-cluster.test.ts: three nodes in direct connection mode).

export type App = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * An instance of `app` on `bullmq(options)`, one retry 50 ms after a failure, its destinations'
 * records kept; closed by `closers`.
 */
export function clusterInstance(app: App, options: BullmqBackendOptions, closers: (() => Promise<unknown>)[]) {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const handler = createFcHandler(app, {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      maxAsyncRetryAttempts: 1,
      backoff: { baseMs: 50, maxMs: 50, jitter: 'none' },
      backend: bullmq(options),
    },
    destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
  });
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return { handler, successes, failures };
}

/** Fails a task named `fails*`, runs `slow*` until it is stopped, answers every other at once. */
export const taskApp: App = (req, res) => {
  const taskId = String(req.headers['x-fc-async-task-id']);
  if (taskId.startsWith('fails')) {
    res.statusCode = 500;
    res.end();
  } else if (taskId.startsWith('slow')) {
    getInvocation(req)?.signal?.addEventListener('abort', () => res.end());
  } else {
    res.end('done');
  }
};

export async function taskStatus(handler: FcHandler, taskId: string) {
  return (await handler.tasks.get(taskId))?.status;
}

type Instance = ReturnType<typeof clusterInstance>;

/**
 * Stops `slow` through `acceptor` once it runs on `worker` (the stop travels on the stop channel),
 * then expects every task to end as {@link taskApp} makes it: `succeeded` Succeeded, `fails` Failed
 * after its one retry, `slow` Stopped, each delivered once by the worker.
 */
export async function stopSlowAndExpectEnds(worker: Instance, acceptor: Instance, succeeded: readonly string[]) {
  await until('the slow task to run', async () => (await taskStatus(acceptor.handler, 'slow')) === 'Running');
  expect((await acceptor.handler.tasks.stop('slow')).taskId).toBe('slow');
  const ended = { ...Object.fromEntries(succeeded.map((id) => [id, 'Succeeded'])), fails: 'Failed', slow: 'Stopped' };
  await until(
    'every task to end and be delivered',
    () => worker.successes.length + worker.failures.length === Object.keys(ended).length,
  );
  const tasks = await listAllTasks(acceptor.handler.tasks, 7);
  expect(Object.fromEntries(tasks.map((t) => [t.taskId, t.status]))).toEqual(ended);
  expect(worker.failures.map((r) => r.requestContext.condition).sort()).toEqual([
    'Stopped',
    'UnhandledInvocationError',
  ]);
  expect((await acceptor.handler.tasks.get('fails'))?.alreadyRetriedTimes).toBe(1);
}

/** Every key `redis` (one node) holds, by SCAN, sorted. */
export async function scanKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}
