import {
  decodeCursor,
  encodeCursor,
  normaliseQuery,
  type TaskPage,
  type TaskQuery,
  type TaskRecord,
} from '@fc-async/core';
import type { Redis } from 'ioredis';
import { decodeRecord } from './codec.js';
import type { Keys } from './keys.js';

/** Ids read from the time index per round trip. */
const SCAN = 200;

/**
 * ListAsyncTasks on Redis: walks the time index (a sorted set, so equal times are ordered by
 * task id, as the in-memory store sorts) from the cursor in the requested direction, filters by
 * prefix and status, and stops one match past the limit to know whether a next page exists. Each
 * round trip goes on from the last task read, not from an offset: tasks other instances insert or
 * delete meanwhile shift no task of the page out of it, nor a second time into it.
 */
export async function listTasks(redis: Redis, keys: Keys, raw: TaskQuery): Promise<TaskPage<TaskRecord>> {
  const query = normaliseQuery(raw);
  const desc = query.sortOrderByTime === 'desc';
  const cursor = query.nextToken === undefined ? undefined : decodeCursor(query.nextToken, query);
  /** Whether (time, id) comes at or before `at` in the walk's direction: passed already. */
  const before = (at: [number, string] | undefined, time: number, id: string) =>
    at !== undefined && time === at[0] && (desc ? id >= at[1] : id <= at[1]);
  // The last task read, and how many of its time were read: those the next round trip skips.
  let last = cursor;
  let ties = 0;
  const begin = query.startedTimeBegin ?? -Infinity;
  const end = query.startedTimeEnd ?? Infinity;
  const bound = (x: number) => (x === Infinity ? '+inf' : x === -Infinity ? '-inf' : String(x));
  const matches: TaskRecord[] = [];
  while (matches.length <= query.limit) {
    const low = last && !desc ? Math.max(begin, last[0]) : begin;
    const high = last && desc ? Math.min(end, last[0]) : end;
    const range = desc ? [bound(high), bound(low), 'BYSCORE', 'REV'] : [bound(low), bound(high), 'BYSCORE'];
    const reply = (await redis.call('ZRANGE', keys.byTime, ...range, 'LIMIT', ties, SCAN, 'WITHSCORES')) as string[];
    const read = last;
    const ids: string[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      const id = reply[i] as string;
      const time = Number(reply[i + 1]);
      ties = last && time === last[0] ? ties + 1 : 1;
      last = [time, id];
      // Read already (a task inserted before it shifted it), or before the cursor.
      if (before(read, time, id) || before(cursor, time, id)) continue;
      if (query.prefix !== undefined && !id.startsWith(query.prefix)) continue;
      ids.push(id);
    }
    if (ids.length > 0) matches.push(...(await readRecords(redis, keys, ids, query)));
    if (reply.length < SCAN * 2) break;
  }
  const tasks = matches.slice(0, query.limit);
  const tail = tasks[tasks.length - 1];
  return {
    tasks,
    nextToken:
      matches.length > query.limit && tail ? encodeCursor(tail.startedTime ?? 0, tail.taskId, query) : undefined,
  };
}

/** The records of `ids` that still exist and match the status filter, in order. */
async function readRecords(redis: Redis, keys: Keys, ids: string[], query: TaskQuery): Promise<TaskRecord[]> {
  const fields = query.includePayload ? ['s', 'r', 'p', 'b'] : ['s', 'r'];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hmgetBuffer(keys.task(id), ...fields);
  const replies = (await pipeline.exec()) ?? [];
  const records: TaskRecord[] = [];
  for (const [error, value] of replies) {
    if (error) throw error;
    const [status, r, p, b] = value as (Buffer | null)[];
    if (!r || (query.status !== undefined && status?.toString() !== query.status)) continue;
    records.push(decodeRecord(r.toString(), p?.toString(), b));
  }
  return records;
}
