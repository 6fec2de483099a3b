import { decodeCursor, type TaskQuery } from '@fc-async/core';

/**
 * The task ids that start with `prefix`, as a range of the primary key: [low, high) in SQLite's
 * BINARY order (UTF-8 bytes, which is code point order). `high` is the prefix with its last code
 * point raised by one (a last U+10FFFF dropped first). `undefined` when no such range exists (a
 * prefix of U+10FFFF only) or the prefix is no well-formed string (a lone surrogate, which
 * SQLite would be given as U+FFFD): the caller then filters the time index by `substr`.
 */
export function prefixRange(prefix: string): [string, string] | undefined {
  if (/\p{Cs}/u.test(prefix)) return undefined;
  const points = [...prefix];
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last === 0x10ffff) continue;
    // Past the surrogates' block: no string holds one of its code points.
    points.push(String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1));
    return [prefix, points.join('')];
  }
  return undefined;
}

/**
 * The SQL of one ListAsyncTasks page: FC's filters, ordered by (started_time, task_id) in the
 * requested direction, one row more than the limit to tell whether a next page exists. Given
 * `ids`, the prefix's range of task ids (see {@link prefixRange}) and few of them, the page is
 * read from that range of the primary key and sorted (the time index is not looked at: `+`
 * keeps SQLite from walking it); else the time index is walked and the prefix filtered by
 * `substr`, which reads every task in the time range when the prefix matches few.
 */
export function listSql(
  query: TaskQuery & { limit: number; sortOrderByTime: 'asc' | 'desc' },
  ids?: [string, string],
): {
  sql: string;
  params: (string | number)[];
} {
  const where: string[] = [];
  const params: (string | number)[] = [];
  // By the id range: the time columns only filter, they choose no index.
  const time = ids ? '+started_time' : 'started_time';
  if (query.status !== undefined) {
    where.push('status = ?');
    params.push(query.status);
  }
  if (ids) {
    where.push('task_id >= ? AND task_id < ?');
    params.push(...ids);
  } else if (query.prefix !== undefined && query.prefix !== '') {
    // substr() counts characters (code points), not UTF-16 units: a character outside the BMP
    // (two units in JavaScript) is one.
    where.push('substr(task_id, 1, ?) = ?');
    params.push(codePoints(query.prefix), query.prefix);
  }
  if (query.startedTimeBegin !== undefined) {
    where.push(`${time} >= ?`);
    params.push(query.startedTimeBegin);
  }
  if (query.startedTimeEnd !== undefined) {
    where.push(`${time} <= ?`);
    params.push(query.startedTimeEnd);
  }
  const desc = query.sortOrderByTime === 'desc';
  if (query.nextToken !== undefined) {
    const [at, taskId] = decodeCursor(query.nextToken, query);
    where.push(`(${time}, task_id) ${desc ? '<' : '>'} (?, ?)`);
    params.push(at, taskId);
  }
  const direction = desc ? 'DESC' : 'ASC';
  const order = ` ORDER BY ${time} ${direction}, task_id ${direction}`;
  const body = query.includePayload ? 'body' : "x'' AS body";
  const filter = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '';
  // By the id range, the rows are sorted by rowid first, and only the page's records read: the
  // sorter holds no record or body of the tasks that miss the page.
  const sql = ids
    ? `SELECT task_id, record, ${body}, payload FROM fc_async_tasks WHERE rowid IN (SELECT rowid FROM fc_async_tasks${filter}${order} LIMIT ?)${order}`
    : `SELECT task_id, record, ${body}, payload FROM fc_async_tasks${filter}${order} LIMIT ?`;
  params.push(query.limit + 1);
  return { sql, params };
}

/** How many code points `text` has (a lone surrogate is one, as SQLite is given U+FFFD for it). */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
