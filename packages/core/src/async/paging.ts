import { createHash } from 'node:crypto';
import { badRequest } from '../errors.js';
import { ASYNC_TASK_STATUSES, type TaskPage, type TaskQuery, type TaskRecord } from './backend.js';

/**
 * Validates a task query (FC's ListAsyncTasks rules) and fills in defaults. Throws a 400
 * `InvalidArgument` naming the bad field.
 *
 * @example
 * ```ts
 * normaliseQuery({ limit: 500 }); // throws: limit must be an integer from 1 to 100
 * ```
 */
export function normaliseQuery(query: TaskQuery = {}): Omit<TaskQuery, 'limit' | 'sortOrderByTime'> & {
  limit: number;
  sortOrderByTime: Exclude<TaskQuery['sortOrderByTime'], undefined>;
} {
  checkShape(query);
  const limit = query.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw badRequest('InvalidArgument', `limit must be an integer from 1 to 100, got ${shown(query.limit)}`);
  }
  const sortOrderByTime = query.sortOrderByTime ?? 'desc';
  if (sortOrderByTime !== 'asc' && sortOrderByTime !== 'desc') {
    throw badRequest('InvalidArgument', `sortOrderByTime must be asc or desc, got ${shown(query.sortOrderByTime)}`);
  }
  for (const key of ['startedTimeBegin', 'startedTimeEnd'] as const) {
    const value = query[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      throw badRequest('InvalidArgument', `${key} must be epoch milliseconds, got ${shown(value)}`);
    }
  }
  const normalised = { ...query, limit, sortOrderByTime };
  if (query.nextToken !== undefined) decodeCursor(query.nextToken, normalised);
  return normalised;
}

/**
 * A value as an error message shows it, whatever it is: `String()` of an object may throw. A
 * string is quoted, so that `limit: '100'` (a query string's value) reads as the string it is.
 */
function shown(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 64))}`;
  return typeof value === 'function' ? 'a function' : String(value);
}

const QUERY_KEYS = new Set([
  'status',
  'prefix',
  'limit',
  'nextToken',
  'sortOrderByTime',
  'startedTimeBegin',
  'startedTimeEnd',
  'includePayload',
]);

/**
 * The query is an object of known fields, and its filters of the right types (a typo would
 * silently match nothing, or everything).
 */
function checkShape(query: TaskQuery): void {
  if (typeof query !== 'object' || query === null || Array.isArray(query)) {
    const got = shown(query);
    throw badRequest('InvalidArgument', `query must be an object, got ${got}`);
  }
  for (const key of Object.keys(query)) {
    if (!QUERY_KEYS.has(key)) {
      throw badRequest('InvalidArgument', `${key} is not a query field (${[...QUERY_KEYS].join(', ')})`);
    }
  }
  if (query.status !== undefined && !ASYNC_TASK_STATUSES.includes(query.status)) {
    throw badRequest(
      'InvalidArgument',
      `status must be one of ${ASYNC_TASK_STATUSES.join(', ')}, got ${shown(query.status)}`,
    );
  }
  if (query.prefix !== undefined && typeof query.prefix !== 'string') {
    throw badRequest('InvalidArgument', `prefix must be a string, got ${shown(query.prefix)}`);
  }
  if (query.includePayload !== undefined && typeof query.includePayload !== 'boolean') {
    throw badRequest('InvalidArgument', `includePayload must be a boolean, got ${shown(query.includePayload)}`);
  }
}

/**
 * What a page token is bound to: the sort order and the filters, not `limit` or `includePayload`
 * (a client may change the page size between pages). A hash, so that a long prefix does not make
 * the token long.
 */
function queryTag(query: TaskQuery): string {
  const bound = [
    query.sortOrderByTime ?? 'desc',
    query.status ?? null,
    query.prefix ?? null,
    query.startedTimeBegin ?? null,
    query.startedTimeEnd ?? null,
  ];
  return createHash('sha256').update(JSON.stringify(bound)).digest('base64url').slice(0, 12);
}

/**
 * An opaque page token: where the previous page of `query` stopped. It is valid only for a query
 * with the same sort order and filters (see {@link decodeCursor}).
 *
 * @example
 * ```ts
 * declare const last: TaskRecord;
 * declare const query: TaskQuery;
 * const token = encodeCursor(last.startedTime ?? 0, last.taskId, query);
 * ```
 */
export function encodeCursor(startedTime: number, taskId: string, query: TaskQuery): string {
  return Buffer.from(JSON.stringify([startedTime, taskId, queryTag(query)])).toString('base64url');
}

/**
 * Reads a token of {@link encodeCursor} back as `[startedTime, taskId]`. Throws a 400
 * `InvalidArgument` for a token this service did not issue, or one issued for another query (a
 * different status, prefix, time range or sort order): its position would mean nothing there.
 *
 * @example
 * ```ts
 * declare const query: TaskQuery & { nextToken: string };
 * const [time, taskId] = decodeCursor(query.nextToken, query);
 * ```
 */
export function decodeCursor(token: string, query: TaskQuery): [number, string] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    // not JSON: refused below
  }
  if (!Array.isArray(value) || typeof value[0] !== 'number' || typeof value[1] !== 'string') {
    throw badRequest('InvalidArgument', 'nextToken is not a token this service issued');
  }
  if (value[2] !== queryTag(query)) {
    throw badRequest(
      'InvalidArgument',
      'nextToken belongs to another query (a different status, prefix, time range or sort order); list again without it',
    );
  }
  return [value[0], value[1]];
}

/**
 * Filters, sorts by (startedTime, taskId) and pages records held in memory.
 *
 * @example
 * ```ts
 * declare const records: TaskRecord[];
 * const page = pageTasks(records, { status: 'Failed', limit: 20 });
 * page.tasks.length; // at most 20
 * ```
 */
export function pageTasks(records: Iterable<TaskRecord>, raw: TaskQuery): TaskPage<TaskRecord> {
  const query = normaliseQuery(raw);
  const desc = query.sortOrderByTime === 'desc';
  const cursor = query.nextToken === undefined ? undefined : decodeCursor(query.nextToken, query);
  const matches: TaskRecord[] = [];
  for (const r of records) {
    if (query.status !== undefined && r.status !== query.status) continue;
    if (query.prefix !== undefined && !r.taskId.startsWith(query.prefix)) continue;
    const t = r.startedTime ?? 0;
    if (query.startedTimeBegin !== undefined && t < query.startedTimeBegin) continue;
    if (query.startedTimeEnd !== undefined && t > query.startedTimeEnd) continue;
    if (cursor && !after(t, r.taskId, cursor, desc)) continue;
    matches.push(r);
  }
  matches.sort((a, b) => compare(a, b) * (desc ? -1 : 1));
  const page = matches.slice(0, query.limit);
  const last = page[page.length - 1];
  return {
    tasks: page,
    nextToken:
      matches.length > query.limit && last ? encodeCursor(last.startedTime ?? 0, last.taskId, query) : undefined,
  };
}

function compare(a: TaskRecord, b: TaskRecord): number {
  const d = (a.startedTime ?? 0) - (b.startedTime ?? 0);
  if (d !== 0) return d;
  return a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;
}

function after(time: number, taskId: string, [cTime, cId]: [number, string], desc: boolean): boolean {
  const d = time - cTime || (taskId < cId ? -1 : taskId > cId ? 1 : 0);
  return desc ? d < 0 : d > 0;
}
