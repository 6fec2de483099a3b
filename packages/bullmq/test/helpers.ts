import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
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
