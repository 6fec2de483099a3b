import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { type FcHandler, TERMINAL_STATUSES } from '@fc-async/core';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { expect, inject } from 'vitest';
import { keysOf } from '../src/keys.js';
import { RedisTaskStore } from '../src/store.js';

/** A prefix no other test uses, so tests share the one redis-server without seeing each other. */
export function uniquePrefix(): string {
  return `test-${randomBytes(6).toString('hex')}`;
}

/** A store on its own connections, closed by the returned function. */
export async function openStore(prefix: string): Promise<{ store: RedisTaskStore; close: () => Promise<void> }> {
  const redis = new Redis(inject('redisUrl'));
  const subscriber = redis.duplicate();
  const store = new RedisTaskStore(redis, subscriber, keysOf(prefix));
  await store.listen();
  return { store, close: () => store.close() };
}

export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The BullMQ queue of the backend under `prefix`, as a test looks into it; closed by `closers`. */
export function bullQueue(prefix: string, closers: (() => Promise<unknown>)[]): Queue {
  const queue = new Queue('tasks', {
    connection: { host: '127.0.0.1', port: Number(new URL(inject('redisUrl')).port) },
    prefix,
  });
  closers.push(() => queue.close());
  return queue;
}

/**
 * A TCP server on loopback `port` (a free one when 0) that counts the connections made to it and
 * closes each at once, as a Redis that goes away does; closed by the returned `close`.
 */
export async function countingServer(
  port = 0,
): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    count: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Waits (up to `timeoutMs`) until each task has ended and its destination was called, then
 * expects each to have Succeeded with exactly one destination call (`calls`, by request id).
 */
export async function expectEachSucceededOnce(
  handler: FcHandler,
  ids: readonly string[],
  calls: ReadonlyMap<string, number>,
  timeoutMs = 40_000,
): Promise<void> {
  await until(
    'every accepted task to end and be delivered',
    async () => {
      const tasks = await Promise.all(ids.map((id) => handler.tasks.get(id)));
      return tasks.every((t) => t && TERMINAL_STATUSES.has(t.status) && t.destinationStatus !== undefined);
    },
    timeoutMs,
  );
  for (const id of ids) {
    const task = await handler.tasks.get(id);
    expect([id, task?.status, calls.get(task?.requestId ?? '')]).toEqual([id, 'Succeeded', 1]);
  }
}
