import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import { FC_STATUS_HEADER } from './write.js';

/** FC's lifecycle calls to a custom runtime (fc-contract section 5). */
export type LifecyclePath = '/initialize' | '/pre-stop' | '/pre-freeze';

const ROUTES: Record<string, LifecyclePath> = {
  'POST /initialize': '/initialize',
  'GET /pre-stop': '/pre-stop',
  'GET /pre-freeze': '/pre-freeze',
};

/**
 * The lifecycle call `req` is, if any: `POST /initialize`, `GET /pre-stop` or `GET /pre-freeze`,
 * unless FC's `x-fc-control-path` header names another path (an HTTP trigger request to an
 * app route that happens to be called `/initialize` carries `/http-invoke`).
 */
export function lifecyclePath(req: IncomingMessage): LifecyclePath | undefined {
  const url = req.url;
  if (url === undefined || url.length < 9 || url.charCodeAt(0) !== 47) return undefined;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const route = ROUTES[`${req.method} ${path}`];
  if (route === undefined) return undefined;
  const control = req.headers['x-fc-control-path'];
  return control === undefined || control === route ? route : undefined;
}

/** Runs `work` and answers 200, or 500 `{ code, message }` with `x-fc-status: 404` if it threw. */
export async function answerLifecycle(
  res: ServerResponse,
  path: LifecyclePath,
  work: () => Promise<unknown>,
  logger: Logger,
): Promise<void> {
  let status = 200;
  let body = '';
  try {
    await work();
  } catch (error) {
    logger.error('lifecycle hook failed', { path, error });
    status = 500;
    body = JSON.stringify({ code: 'LifecycleHookFailed', message: `The ${path} hook failed` });
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader(FC_STATUS_HEADER, '404');
  }
  if (res.writableEnded) return;
  res.statusCode = status;
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
