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
 * prefix and status, and stops one match past the limit to know whether a next page exists.
 */
export async function listTasks(redis: Redis, keys: Keys, raw: TaskQuery): Promise<TaskPage<TaskRecord>> {
  const query = normaliseQuery(raw);
  const desc = query.sortOrderByTime === 'desc';
  const cursor = query.nextToken === undefined ? undefined : decodeCursor(query.nextToken);
  let low = query.startedTimeBegin ?? -Infinity;
  let high = query.startedTimeEnd ?? Infinity;
  if (cursor && desc) high = Math.min(high, cursor[0]);
  if (cursor && !desc) low = Math.max(low, cursor[0]);
  const bound = (x: number) => (x === Infinity ? '+inf' : x === -Infinity ? '-inf' : String(x));
  const range = desc ? [bound(high), bound(low), 'BYSCORE', 'REV'] : [bound(low), bound(high), 'BYSCORE'];
  const matches: TaskRecord[] = [];
  for (let offset = 0; matches.length <= query.limit; offset += SCAN) {
    const reply = (await redis.call('ZRANGE', keys.byTime, ...range, 'LIMIT', offset, SCAN, 'WITHSCORES')) as string[];
    const ids: string[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      const id = reply[i] as string;
      const time = Number(reply[i + 1]);
      if (cursor && time === cursor[0] && (desc ? id >= cursor[1] : id <= cursor[1])) continue;
      if (query.prefix !== undefined && !id.startsWith(query.prefix)) continue;
      ids.push(id);
    }
    if (ids.length > 0) matches.push(...(await read(redis, keys, ids, query)));
    if (reply.length < SCAN * 2) break;
  }
  const tasks = matches.slice(0, query.limit);
  const last = tasks[tasks.length - 1];
  return {
    tasks,
    nextToken: matches.length > query.limit && last ? encodeCursor(last.startedTime ?? 0, last.taskId) : undefined,
  };
}

/** The records of `ids` that still exist and match the status filter, in order. */
async function read(redis: Redis, keys: Keys, ids: string[], query: TaskQuery): Promise<TaskRecord[]> {
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
