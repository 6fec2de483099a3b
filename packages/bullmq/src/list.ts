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
 * round trip goes on from the last task read, never by an offset: the rest of its millisecond
 * (read whole, and the ids after it kept), then the times past it. Tasks other instances insert
 * or delete meanwhile shift no task of the page out of it, nor a second time into it.
 */
export async function listTasks(redis: Redis, keys: Keys, raw: TaskQuery): Promise<TaskPage<TaskRecord>> {
  const query = normaliseQuery(raw);
  const desc = query.sortOrderByTime === 'desc';
  const begin = query.startedTimeBegin ?? -Infinity;
  const end = query.startedTimeEnd ?? Infinity;
  const bound = (x: number, exclusive = false) =>
    x === Infinity ? '+inf' : x === -Infinity ? '-inf' : exclusive ? `(${x}` : String(x);
  const matches: TaskRecord[] = [];
  /** Keeps the ids that pass the prefix filter, reading their records SCAN at a time; true once past the limit. */
  const take = async (ids: string[]): Promise<boolean> => {
    const kept = query.prefix === undefined ? ids : ids.filter((id) => id.startsWith(query.prefix as string));
    for (let i = 0; i < kept.length && matches.length <= query.limit; i += SCAN) {
      matches.push(...(await readRecords(redis, keys, kept.slice(i, i + SCAN), query)));
    }
    return matches.length > query.limit;
  };
  // The last task read: the walk goes on after it.
  let last = query.nextToken === undefined ? undefined : decodeCursor(query.nextToken, query);
  const inRange = last !== undefined && last[0] >= begin && last[0] <= end;
  if (last && inRange && (await take(await afterInItsTime(redis, keys, last, desc)))) return page(matches, query);
  while (matches.length <= query.limit) {
    const low = last && !desc ? bound(Math.max(begin, last[0]), last[0] >= begin) : bound(begin);
    const high = last && desc ? bound(Math.min(end, last[0]), last[0] <= end) : bound(end);
    const range = desc ? [high, low, 'BYSCORE', 'REV'] : [low, high, 'BYSCORE'];
    const reply = (await redis.call('ZRANGE', keys.byTime, ...range, 'LIMIT', 0, SCAN, 'WITHSCORES')) as string[];
    const ids: string[] = [];
    for (let i = 0; i < reply.length; i += 2) ids.push(reply[i] as string);
    if (ids.length === 0) break;
    last = [Number(reply[reply.length - 1]), ids[ids.length - 1] as string];
    if (await take(ids)) break;
    if (reply.length < SCAN * 2) break;
    // The rest of the last task's millisecond, before the next times.
    if (await take(await afterInItsTime(redis, keys, last, desc))) break;
  }
  return page(matches, query);
}

/**
 * The ids of `at`'s time that come after it in the walk's direction, in order: the whole
 * millisecond is read (equal times sort by id, byte by byte, as task ids are ASCII and JavaScript
 * compares them alike), so that tasks deleted meanwhile among those read shift none past the walk.
 */
async function afterInItsTime(redis: Redis, keys: Keys, at: [number, string], desc: boolean): Promise<string[]> {
  const time = String(at[0]);
  const tied = (await redis.call('ZRANGE', keys.byTime, time, time, 'BYSCORE')) as string[];
  return desc ? tied.filter((id) => id < at[1]).reverse() : tied.filter((id) => id > at[1]);
}

function page(matches: TaskRecord[], query: ReturnType<typeof normaliseQuery>): TaskPage<TaskRecord> {
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
