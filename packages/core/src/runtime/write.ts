import type { ServerResponse } from 'node:http';
import type { ResolvedAsyncOptions } from '../async/options.js';
import { isPlatformFailure } from '../async/platform.js';
import { type BridgeResponse, FC_STATUS_HEADER, hasFcFailureStatus } from '../response.js';

export { FC_STATUS_HEADER };

/**
 * A custom runtime's async options: an answer the app marked `x-fc-status: 404` itself (FC's
 * failure signal, which an app written for a custom runtime sends) fails the attempt, whatever
 * `isFailure` says of it. On FC such an answer is a failure FC retries; counted a success here,
 * platform mode called the in-process onSuccess at each of FC's attempts, and local mode ended
 * the task `Succeeded` where FC would have retried it.
 */
export function failOnFcStatus(options: ResolvedAsyncOptions): ResolvedAsyncOptions {
  const isFailure = options.isFailure;
  return {
    ...options,
    isFailure: function isFailureOrFcStatus(response) {
      return hasFcFailureStatus(response) || isFailure(response);
    },
  };
}

const failures = new WeakSet<object>();

/** Marks a response fc-async produced for a failed async invocation in platform mode. */
export function markFcFailure(response: BridgeResponse): BridgeResponse {
  failures.add(response);
  return response;
}

/** Whether the response must carry `x-fc-status: 404`. */
export function isFcFailure(response: BridgeResponse): boolean {
  return failures.has(response) || isPlatformFailure(response);
}

const answeredInFront = new WeakSet<object>();

/**
 * `handle`'s answer to an async request whose response a middleware in front of `fcAsync()`
 * already ended (it answered, a `503` or a `401`, then called `next()` all the same): nothing to
 * write, nothing to pass on. `statusCode` is the status that went out.
 */
export function answeredBefore(res: ServerResponse): BridgeResponse {
  const response: BridgeResponse = { statusCode: res.statusCode, headers: {}, body: '' };
  answeredInFront.add(response);
  return response;
}

/**
 * Whether an answer of the custom-runtime middleware's `handle` stands for a response a middleware
 * in front of it already sent, then passed the request on (`next()`) all the same: the async
 * request was not accepted (no `202`), so nothing is queued or run. Write nothing (
 * {@link writeBridgeResponse} writes nothing for it) and do not pass the request on: the app's
 * routes would run for a caller that was refused.
 *
 * @example
 * ```ts
 * import http from 'node:http';
 * declare const appListener: http.RequestListener;
 * const runtime = createFcRuntime();
 * const server = http.createServer(async (req, res) => {
 *   const answer = await runtime.handle(req, { app: server, listener: () => appListener }, res);
 *   if (answer === undefined) runtime.proceed(req, () => appListener(req, res));
 *   else if (!isAnsweredInFront(answer)) writeBridgeResponse(res, answer, req.method ?? 'GET');
 * });
 * ```
 */
export function isAnsweredInFront(answer: BridgeResponse | undefined): boolean {
  return answer !== undefined && answeredInFront.has(answer);
}

/** Headers the writer sets itself from the whole body. */
const SKIPPED = new Set(['content-length', 'transfer-encoding']);

/**
 * Writes a whole response (one fc-async produced or collected through the bridge) to a real
 * Node `ServerResponse`: status, headers (arrays kept, so every `Set-Cookie` survives),
 * `content-length` from the body, and no body for `HEAD`, 1xx, 204 and 304. A response that is
 * a failed async invocation in platform mode gets `x-fc-status: 404`, so that FC retries it and
 * routes it to onFailure. An answer {@link isAnsweredInFront} writes nothing: the response already went out.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * createServer((req, res) => {
 *   writeBridgeResponse(res, { statusCode: 202, headers: { 'x-fc-request-id': newRequestId() }, body: '' }, req.method ?? 'GET');
 * });
 * ```
 */
export function writeBridgeResponse(res: ServerResponse, response: BridgeResponse, method: string): void {
  if (answeredInFront.has(response)) return;
  const { statusCode, headers, body } = response;
  res.statusCode = statusCode;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || SKIPPED.has(name.toLowerCase())) continue;
    res.setHeader(name, value);
  }
  if (isFcFailure(response)) res.setHeader(FC_STATUS_HEADER, '404');
  const bodyless = statusCode === 204 || statusCode === 304 || statusCode < 200;
  if (method === 'HEAD') {
    if (headers['content-length'] !== undefined) res.setHeader('content-length', headers['content-length']);
    res.end();
    return;
  }
  if (bodyless) {
    res.end();
    return;
  }
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
