import {
  ASYNC_TASK_STATUSES,
  type AsyncTaskStatus,
  isFcRequestId,
  isValidTaskId,
  type TaskQuery,
} from '@fc-async/core';
import { type ApiCall, boolean, checkQualifier, integer, single } from './params.js';
import { ApiError, invalid, sendApi } from './respond.js';

/** A task id by FC's rule, or a request id (the task id of a task that was given none). */
function taskId(raw: string): string {
  if (!isValidTaskId(raw) && !isFcRequestId(raw)) {
    throw invalid(
      `The task id "${raw.slice(0, 64)}" breaks FC's rule ^[A-Za-z_][A-Za-z0-9_-]*$ (at most 128 characters)`,
    );
  }
  return raw;
}

/** GetAsyncTask: `GET /2023-03-30/functions/{fn}/async-tasks/{taskId}`. */
export async function getAsyncTask(call: ApiCall, rawTaskId: string): Promise<void> {
  checkQualifier(call.params);
  const id = taskId(rawTaskId);
  const task = await call.fn.handler.tasks.get(id);
  if (!task) throw new ApiError(404, 'AsyncTaskNotFound', `async task '${id}' does not exist`);
  sendApi(call.res, call.requestId, 200, task);
}

/** Reads ListAsyncTasks' query: every filter, `limit` 1..100, `nextToken`, `sortOrderByTime`. */
export function listQuery(params: URLSearchParams): TaskQuery {
  checkQualifier(params);
  const query: TaskQuery = {};
  query.limit = integer(params, 'limit', 1, 100);
  const status = single(params, 'status');
  if (status !== undefined && status !== '') {
    if (!ASYNC_TASK_STATUSES.includes(status as AsyncTaskStatus)) {
      throw invalid(`status must be one of ${ASYNC_TASK_STATUSES.join(', ')}, got "${status.slice(0, 32)}"`);
    }
    query.status = status as AsyncTaskStatus;
  }
  const prefix = single(params, 'prefix');
  if (prefix) query.prefix = prefix;
  const token = single(params, 'nextToken');
  if (token) query.nextToken = token;
  const order = single(params, 'sortOrderByTime')?.toLowerCase();
  if (order !== undefined && order !== '') {
    if (order !== 'asc' && order !== 'desc')
      throw invalid(`sortOrderByTime must be asc or desc, got "${order.slice(0, 32)}"`);
    query.sortOrderByTime = order;
  }
  query.startedTimeBegin = integer(params, 'startedTimeBegin', 0, Number.MAX_SAFE_INTEGER);
  query.startedTimeEnd = integer(params, 'startedTimeEnd', 0, Number.MAX_SAFE_INTEGER);
  query.includePayload = boolean(params, 'includePayload');
  return query;
}

/**
 * A function's page token: its store's, after the function's name (each function has a store of
 * its own, whose tokens are bound to their query but know no function).
 */
const tokenTag = (fn: string) => `${Buffer.from(fn).toString('base64url')}.`;

/** The store's token inside `token`, refused when it came from another function's listing. */
function storeToken(fn: string, token: string): string {
  const tag = tokenTag(fn);
  if (!token.startsWith(tag)) {
    // Tagged with a function's name (see tokenTag), another one's; else no token of this emulator.
    throw invalid(
      /^[A-Za-z0-9_-]*\./.test(token)
        ? "nextToken belongs to another function's listing"
        : 'nextToken is not a token this service issued',
    );
  }
  return token.slice(tag.length);
}

/** ListAsyncTasks: `GET /2023-03-30/functions/{fn}/async-tasks`. */
export async function listAsyncTasks(call: ApiCall): Promise<void> {
  const query = listQuery(call.params);
  const fn = call.fn.spec.name;
  if (query.nextToken !== undefined) query.nextToken = storeToken(fn, query.nextToken);
  // Ours: `returnPayload=false` leaves the answers out (the dashboard's list shows none; a page
  // of tasks with 1 MB answers each was 50 MB on every live refresh).
  const answers = boolean(call.params, 'returnPayload') !== false;
  const page = await call.fn.handler.tasks.list(query);
  // Ours: the server's clock, by which the dashboard counts a running task's duration (a browser's
  // clock may be off by minutes, and startedTime is the server's).
  call.res.setHeader('x-fc-async-now', String(Date.now()));
  sendApi(call.res, call.requestId, 200, {
    tasks: answers ? page.tasks : page.tasks.map(({ returnPayload: _, ...task }) => task),
    ...(page.nextToken ? { nextToken: tokenTag(fn) + page.nextToken } : {}),
  });
}

/** StopAsyncTask: `PUT /2023-03-30/functions/{fn}/async-tasks/{taskId}/stop`. */
export async function stopAsyncTask(call: ApiCall, rawTaskId: string): Promise<void> {
  checkQualifier(call.params);
  const id = taskId(rawTaskId);
  try {
    await call.fn.handler.tasks.stop(id);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'AsyncTaskNotFound') throw new ApiError(404, 'AsyncTaskNotFound', `async task '${id}' does not exist`);
    throw error;
  }
  sendApi(call.res, call.requestId, 200, {});
}
