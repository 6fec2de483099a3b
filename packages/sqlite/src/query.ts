import { decodeCursor, type TaskQuery } from '@fc-async/core';

/**
 * The SQL of one ListAsyncTasks page: FC's filters, ordered by (started_time, task_id) in the
 * requested direction, one row more than the limit to tell whether a next page exists.
 */
export function listSql(query: TaskQuery & { limit: number; sortOrderByTime: 'asc' | 'desc' }): {
  sql: string;
  params: (string | number)[];
} {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (query.status !== undefined) {
    where.push('status = ?');
    params.push(query.status);
  }
  if (query.prefix !== undefined && query.prefix !== '') {
    where.push('substr(task_id, 1, ?) = ?');
    params.push(query.prefix.length, query.prefix);
  }
  if (query.startedTimeBegin !== undefined) {
    where.push('started_time >= ?');
    params.push(query.startedTimeBegin);
  }
  if (query.startedTimeEnd !== undefined) {
    where.push('started_time <= ?');
    params.push(query.startedTimeEnd);
  }
  const desc = query.sortOrderByTime === 'desc';
  if (query.nextToken !== undefined) {
    const [time, taskId] = decodeCursor(query.nextToken, query);
    where.push(`(started_time, task_id) ${desc ? '<' : '>'} (?, ?)`);
    params.push(time, taskId);
  }
  const direction = desc ? 'DESC' : 'ASC';
  const body = query.includePayload ? 'body' : "x'' AS body";
  const sql =
    `SELECT record, ${body}, payload FROM fc_async_tasks` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY started_time ${direction}, task_id ${direction} LIMIT ?`;
  params.push(query.limit + 1);
  return { sql, params };
}
