import { silentLogger } from '@fc-async/core';
import { taskRecord } from '@fc-async/test-kit/task-store';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { keysOf } from '../src/keys.js';
import { resolveBullmqOptions } from '../src/options.js';
import { Pruner } from '../src/prune.js';
import { openStore, uniquePrefix } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function pruner(prefix: string): { pruner: Pruner; redis: Redis } {
  const redis = new Redis(inject('redisUrl'));
  const options = resolveBullmqOptions({ connection: inject('redisUrl'), maxTasks: 0 });
  const pruner = new Pruner(redis, keysOf(prefix), options, silentLogger, () => undefined);
  closers.push(async () => {
    pruner.stop();
    await redis.quit();
  });
  return { pruner, redis };
}

describe('Pruner while other instances prune and accept', () => {
  it('deletes only tasks still finished: one another instance deleted and accepted again meanwhile is kept', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    await store.insert(taskRecord('t_1', { requestId: 'first', status: 'Succeeded', startedTime: 1, endTime: 2 }));
    const slow = pruner(prefix);
    const other = pruner(prefix);
    // Right after the slow pruner has read which tasks to delete, another deletes the same task,
    // and the task id is accepted again.
    const read = slow.redis.zrangebyscore.bind(slow.redis) as (...args: unknown[]) => Promise<string[]>;
    (slow.redis as unknown as { zrangebyscore: typeof read }).zrangebyscore = async (...args) => {
      const ids = await read(...args);
      expect(await other.pruner.run()).toBe(1);
      expect(await store.insert(taskRecord('t_1', { requestId: 'second', startedTime: 3 }))).toBe(true);
      return ids;
    };
    expect(await slow.pruner.run()).toBe(0);
    expect((await store.get('t_1'))?.requestId).toBe('second');
    expect((await store.list({})).tasks.map((t) => t.requestId)).toEqual(['second']);
  });
});
