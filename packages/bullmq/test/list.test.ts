import type { TaskQuery, TaskRecord } from '@fc-async/core';
import { taskRecord } from '@fc-async/test-kit/task-store';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { keysOf } from '../src/keys.js';
import { type ListCommand, listTasks } from '../src/list.js';
import type { RedisTaskStore } from '../src/store.js';
import { openStore, uniquePrefix } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** 500 tasks, one a millisecond; every tenth Failed: a status filter reads the index in several round trips. */
async function fiveHundred() {
  const prefix = uniquePrefix();
  const { store, close } = await openStore(prefix);
  closers.push(close);
  const records: TaskRecord[] = [];
  for (let i = 0; i < 500; i++) {
    const status = i % 10 === 0 ? 'Failed' : 'Succeeded';
    records.push(taskRecord(`t_${String(i).padStart(3, '0')}`, { startedTime: 1_000 + i, status, endTime: 1 }));
  }
  await Promise.all(records.map((r) => store.insert(r)));
  const redis = (store as unknown as { redis: Listing }).redis;
  return { store, redis, keys: keysOf(prefix) };
}

type Listing = Redis & ListCommand;

/** Runs `meanwhile` once, right after the listing's first stretch of its walk (one script run). */
function afterFirstRead(redis: Listing, meanwhile: () => Promise<unknown>): void {
  const list = redis.fcAsyncListBuffer;
  redis.fcAsyncListBuffer = async (...args) => {
    redis.fcAsyncListBuffer = list;
    const reply = await list.apply(redis, args);
    await meanwhile();
    return reply;
  };
}

const failedIds = (from: number, to: number) =>
  Array.from({ length: 500 }, (_, i) => i)
    .filter((i) => i % 10 === 0 && i >= from && i <= to)
    .map((i) => `t_${String(i).padStart(3, '0')}`);

describe('listTasks while other instances insert and prune', () => {
  it('tasks accepted meanwhile (newest first): no task twice in a page', async () => {
    const { store, redis, keys } = await fiveHundred();
    afterFirstRead(redis, async () => {
      for (let i = 0; i < 50; i++) await store.insert(taskRecord(`new_${i}`, { startedTime: 5_000 + i }));
    });
    const page = await listTasks(redis, keys, { status: 'Failed', limit: 100 });
    expect(page.tasks.map((t) => t.taskId)).toEqual(failedIds(0, 499).reverse());
  });

  it('tasks deleted meanwhile (oldest first): no gap among the tasks that stayed', async () => {
    const { redis, keys } = await fiveHundred();
    const deleted = Array.from({ length: 50 }, (_, i) => `t_${String(2 * i + 1).padStart(3, '0')}`);
    afterFirstRead(redis, async () => {
      for (const id of deleted) await redis.del(keys.task(id));
      await redis.zrem(keys.byTime, ...deleted);
    });
    const page = await listTasks(redis, keys, { status: 'Failed', limit: 100, sortOrderByTime: 'asc' });
    expect(page.tasks.map((t) => t.taskId)).toEqual(failedIds(0, 499));
  });

  it('walks past more tasks of one millisecond than one round trip reads, each once', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    const ids = Array.from({ length: 450 }, (_, i) => `t_${String(i).padStart(3, '0')}`);
    await Promise.all(
      ids.map((id, i) => store.insert(taskRecord(id, { startedTime: 7, status: i % 3 ? 'Succeeded' : 'Failed' }))),
    );
    const redis = (store as unknown as { redis: Listing }).redis;
    const failed = ids.filter((_, i) => i % 3 === 0);
    for (const sortOrderByTime of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await listTasks(redis, keysOf(prefix), {
          status: 'Failed',
          limit: 40,
          sortOrderByTime,
          nextToken,
        });
        seen.push(...page.tasks.map((t) => t.taskId));
        nextToken = page.nextToken;
      } while (nextToken);
      expect(seen).toEqual(sortOrderByTime === 'asc' ? failed : [...failed].reverse());
    }
  });

  it('tasks of one millisecond pruned meanwhile among those read: none of those left is missed, either way', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    // A burst accepted within one millisecond, more than a round trip reads; every third one Failed.
    const ids = Array.from({ length: 450 }, (_, i) => `t_${String(i).padStart(3, '0')}`);
    const status = (i: number) => (i % 3 ? 'Succeeded' : 'Failed');
    await Promise.all(
      ids.map((id, i) => store.insert(taskRecord(id, { startedTime: 7, status: status(i), endTime: 1 }))),
    );
    const redis = (store as unknown as { redis: Listing }).redis;
    const keys = keysOf(prefix);
    for (const sortOrderByTime of ['asc', 'desc'] as const) {
      const order = sortOrderByTime === 'asc' ? ids : [...ids].reverse();
      // Retention deletes ten Succeeded tasks of the first round trip's, right after it.
      const pruned = order
        .slice(0, 200)
        .filter((id) => status(ids.indexOf(id)) === 'Succeeded')
        .slice(0, 10);
      afterFirstRead(redis, async () => {
        for (const id of pruned) await redis.del(keys.task(id));
        await redis.zrem(keys.byTime, ...pruned);
      });
      const page = await listTasks(redis, keys, { status: 'Failed', limit: 100, sortOrderByTime });
      expect(page.tasks.map((t) => t.taskId)).toEqual(
        order.filter((id) => status(ids.indexOf(id)) === 'Failed').slice(0, 100),
      );
    }
  });
});

/** Every page of `query` from the first on, in turn: the ids listed. */
async function walk(store: RedisTaskStore, query: TaskQuery): Promise<string[]> {
  const seen: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await store.list({ ...query, nextToken });
    seen.push(...page.tasks.map((t) => t.taskId));
    nextToken = page.nextToken;
  } while (nextToken);
  return seen;
}

describe('listTasks with a filter that matches little', () => {
  it('walks 9,000 tasks for a prefix that matches a few of them (or none): each match once, in order', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    // One task in 1,000 is a refund, one refund in three Failed; two tasks a millisecond.
    const idOf = (i: number) => `${i % 1000 === 500 ? 'refund' : 'order'}_${String(i).padStart(4, '0')}`;
    const statusOf = (i: number) => (i % 3000 === 500 ? 'Failed' : 'Succeeded');
    for (let i = 0; i < 9000; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => i + j);
      await Promise.all(
        batch.map((n) =>
          store.insert(taskRecord(idOf(n), { startedTime: 1_000 + Math.floor(n / 2), status: statusOf(n) })),
        ),
      );
    }
    const refunds = Array.from({ length: 9 }, (_, k) => idOf(k * 1000 + 500));
    for (const sortOrderByTime of ['asc', 'desc'] as const) {
      const inOrder = (ids: string[]) => (sortOrderByTime === 'asc' ? ids : [...ids].reverse());
      expect(await walk(store, { prefix: 'refund_', limit: 2, sortOrderByTime })).toEqual(inOrder(refunds));
      expect(await walk(store, { prefix: 'refund_', status: 'Failed', limit: 1, sortOrderByTime })).toEqual(
        inOrder(refunds.filter((_, k) => k % 3 === 0)),
      );
      expect(await store.list({ prefix: 'zz', sortOrderByTime })).toEqual({ tasks: [], nextToken: undefined });
      expect(await store.list({ status: 'Expired', sortOrderByTime })).toEqual({ tasks: [], nextToken: undefined });
    }
  });

  it('tasks of one millisecond in byte order of their ids (upper case, then _, then lower case), paged across stretches', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    // 600 ids of one millisecond, more than a stretch looks at; an ordering by locale would
    // mix cases and skip the _ and -.
    const heads = ['A', 'B', 'Z', '_', 'a', 'b', 'z', 'a_', 'a-', 'aB'];
    const ids = heads.flatMap((h) => Array.from({ length: 60 }, (_, i) => `${h}${i % 2 ? '-' : '_'}${i}`));
    const status = (id: string) => (id.length % 2 ? 'Failed' : 'Succeeded');
    await Promise.all(ids.map((id) => store.insert(taskRecord(id, { startedTime: 7, status: status(id) }))));
    const sorted = [...ids].sort(); // byte order: the ids are ASCII
    const failed = sorted.filter((id) => status(id) === 'Failed');
    expect(await walk(store, { status: 'Failed', limit: 7, sortOrderByTime: 'asc' })).toEqual(failed);
    expect(await walk(store, { status: 'Failed', limit: 7, sortOrderByTime: 'desc' })).toEqual([...failed].reverse());
    expect(await walk(store, { prefix: 'a', limit: 33, sortOrderByTime: 'asc' })).toEqual(
      sorted.filter((id) => id.startsWith('a')),
    );
  });
});
