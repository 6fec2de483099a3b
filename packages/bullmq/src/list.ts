import {
  decodeCursor,
  encodeCursor,
  normaliseQuery,
  type TaskPage,
  type TaskQuery,
  type TaskRecord,
} from '@fc-async/core';
import { decodeRecord } from './codec.js';
import type { RedisClient } from './connection.js';
import type { Keys } from './keys.js';

/** Ids the first stretch of a walk looks at; each further one looks at four times more, up to {@link MAX_SCAN}. */
const FIRST_SCAN = 200;
/** Ids one stretch looks at, at most: a few milliseconds of Redis's time, in one script run. */
const MAX_SCAN = 4000;

/** LIST_SCRIPT's reply, its bulk strings as Buffers (a body is bytes). */
type ListReply = (Buffer | null)[];

/** The script as RedisTaskStore defines it on its connection. */
export interface ListCommand {
  fcAsyncListBuffer(byTime: string, ...args: string[]): Promise<ListReply>;
}

/**
 * ListAsyncTasks on Redis: walks the time index (a sorted set, so equal times are ordered by
 * task id, as the in-memory store sorts) from the cursor in the requested direction, filters by
 * prefix and status, and stops one match past the limit to know whether a next page exists. The
 * walk runs in Redis (LIST_SCRIPT), in stretches of at most {@link MAX_SCAN} ids, growing from
 * {@link FIRST_SCAN} while the page is short, so that a filter that matches little costs few
 * round trips and only its matches' records. Each stretch goes on from the last task the one
 * before looked at, never by an offset: the rest of its millisecond, then the times past it.
 * Tasks other instances insert or delete meanwhile shift no task of the page out of it, nor a
 * second time into it.
 */
export async function listTasks(
  redis: RedisClient & ListCommand,
  keys: Keys,
  raw: TaskQuery,
): Promise<TaskPage<TaskRecord>> {
  const query = normaliseQuery(raw);
  const desc = query.sortOrderByTime === 'desc';
  const begin = query.startedTimeBegin ?? -Infinity;
  const end = query.startedTimeEnd ?? Infinity;
  const bound = (x: number, exclusive = false) =>
    x === Infinity ? '+inf' : x === -Infinity ? '-inf' : exclusive ? `(${x}` : String(x);
  const matches: TaskRecord[] = [];
  // The last task looked at: the walk goes on after it.
  let last = query.nextToken === undefined ? undefined : decodeCursor(query.nextToken, query);
  let scan = FIRST_SCAN;
  for (;;) {
    const low = last && !desc ? bound(Math.max(begin, last[0]), last[0] >= begin) : bound(begin);
    const high = last && desc ? bound(Math.min(end, last[0]), last[0] <= end) : bound(end);
    const tied = last !== undefined && last[0] >= begin && last[0] <= end ? last : undefined;
    const reply = await redis.fcAsyncListBuffer(
      keys.byTime,
      keys.task(''),
      desc ? '1' : '0',
      desc ? high : low,
      desc ? low : high,
      tied ? String(tied[0]) : '',
      tied ? tied[1] : '',
      query.prefix ?? '',
      query.status ?? '',
      String(query.limit + 1 - matches.length),
      String(scan),
      query.includePayload ? '1' : '0',
    );
    for (let i = 3; i < reply.length; i += 4) {
      const [r, p, b] = [reply[i + 1], reply[i + 2], reply[i + 3]];
      if (r) matches.push(decodeRecord(r.toString(), p?.toString(), b));
    }
    const state = reply[0]?.toString();
    if (state !== 'more') break;
    last = [Number(reply[1]?.toString()), String(reply[2]?.toString())];
    scan = Math.min(scan * 4, MAX_SCAN);
  }
  return page(matches, query);
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
