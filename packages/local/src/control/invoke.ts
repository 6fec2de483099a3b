import type { IncomingMessage } from 'node:http';
import { detectInvocation, type FcHttpResult, parseFcEvent } from '@fc-async/core';
import type { IncomingCall } from '../event.js';
import type { LocalFunction } from '../function.js';
import { asyncBodyTooLarge, asyncLimitOf } from '../limits.js';
import type { EmulatorLog } from '../log.js';
import { type ApiCall, checkQualifier } from './params.js';
import { ApiError } from './respond.js';

/** Request headers of InvokeFunction that reach the function: FC's async controls (FC 2.0's task id too), W3C trace context. */
const PASSED = [
  'x-fc-invocation-type',
  'x-fc-async-task-id',
  'x-fc-stateful-async-invocation-id',
  'x-fc-async-delay',
  'x-fc-log-type',
  // The caller's W3C trace context, which FC 3.0 propagates: the invocation's span continues its trace.
  'traceparent',
  'tracestate',
  'baggage',
];

/**
 * A payload that is itself an FC 3.0 HTTP event (ours: lets the API call any route of an HTTP
 * function). JSON with a `requestContext.http` is meant as one: a malformed one is refused (400)
 * rather than passed on as a raw payload.
 */
function asHttpEvent(body: Buffer): IncomingCall | undefined {
  if (body.length === 0 || body[0] !== 0x7b /* { */) return undefined;
  let value: { requestContext?: { http?: unknown } };
  try {
    value = JSON.parse(body.toString('utf8')) as typeof value;
  } catch {
    return undefined;
  }
  if (!value?.requestContext?.http) return undefined;
  return parseFcEvent(value);
}

/** The request headers of an InvokeFunction call that reach its function (see {@link PASSED}). */
function passedHeaders(h: IncomingMessage['headers']): IncomingCall['headers'] {
  const headers: IncomingCall['headers'] = {};
  for (const name of PASSED) if (h[name] !== undefined) headers[name] = h[name];
  return headers;
}

/**
 * The async limit an InvokeFunction call is held to: its function's (`async.maxAsyncPayloadBytes`)
 * when the headers passed on ask for an async invocation, else `undefined` (a sync call: FC's 32
 * MB; or an engine from a copy of the core that does not tell its limit, which checks it itself).
 */
function asyncPayloadLimit(headers: IncomingCall['headers'], fn: LocalFunction): number | undefined {
  const limit = asyncLimitOf(fn.engine);
  if (limit === undefined) return undefined;
  try {
    return detectInvocation(headers).type === 'Async' ? limit : undefined;
  } catch {
    // Headers the call refuses anyway, once read (a malformed task id).
    return undefined;
  }
}

/**
 * FC's API refusal of an async payload past `limit`: `400 EntityTooLarge`, in the words of the
 * engine's own (the HTTP trigger's `InvalidArgument`). The API decides it by the payload's size
 * itself, whatever the function's kind, rather than by what the engine answered.
 */
const payloadTooLarge = (size: number, limit: number) =>
  new ApiError(400, 'EntityTooLarge', asyncBodyTooLarge(size, limit).message);

/**
 * Refuses, from its head, an async InvokeFunction whose `Content-Length` is past the function's
 * async limit (`400 EntityTooLarge`): before `100 Continue`, the body unread. As on FC, the limit
 * holds the payload, an HTTP function's too (whose payload may be an FC event: its body is never
 * larger than the payload).
 */
export function refuseDeclaredPayload(req: IncomingMessage, fn: LocalFunction): void {
  const limit = asyncPayloadLimit(passedHeaders(req.headers), fn);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (limit !== undefined && declared > limit) throw payloadTooLarge(declared, limit);
}

/** An error the function's handler answered, with its code as it is (a 429's Retry-After kept). */
function errorOf(result: FcHttpResult): ApiError {
  try {
    const body = JSON.parse(result.body) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string') {
      // A refusal worth another try (429, a store's 503) says when, as the trigger's answer does.
      const retryAfter = result.headers['retry-after'];
      return new ApiError(
        result.statusCode,
        body.code,
        String(body.message ?? ''),
        typeof retryAfter === 'string' ? { 'retry-after': retryAfter } : undefined,
      );
    }
  } catch {
    // fall through
  }
  return new ApiError(result.statusCode, 'InvalidArgument', 'The invocation was refused');
}

/**
 * InvokeFunction: `POST /2023-03-30/functions/{fn}/invocations`. Async answers 202 with
 * `x-fc-request-id` and `x-fc-async-task-id`; Sync answers 200 with the function's bytes (and
 * their `content-encoding`), its HTTP status in `x-fc-http-status` (ours) and `x-fc-error-type`
 * when it failed (status ≥ 500).
 */
export async function invokeFunction(call: ApiCall, log: EmulatorLog): Promise<void> {
  checkQualifier(call.params);
  const started = performance.now();
  const h = call.req.headers;
  const headers = passedHeaders(h);
  const fromEvent = call.fn.spec.http ? asHttpEvent(call.body) : undefined;
  const incoming: IncomingCall = fromEvent
    ? { ...fromEvent, headers: { ...fromEvent.headers, ...headers } }
    : {
        method: 'POST',
        url: '/',
        headers: { ...headers, 'content-type': h['content-type'] ?? 'application/octet-stream' },
        body: call.body,
      };
  // The answer follows what the function is given: the headers passed on (the event's own may ask
  // for an async call too), never a client's x-fc-retry-count, which the function does not see.
  const detection = detectInvocation({ ...incoming.headers, 'x-fc-retry-count': undefined });
  const isAsync = detection.type === 'Async';
  // A payload sent chunked (or an event that asks for an async call itself): its size, once read.
  const limit = isAsync ? asyncLimitOf(call.fn.engine) : undefined;
  if (limit !== undefined && call.body.length > limit) throw payloadTooLarge(call.body.length, limit);
  const { result, requestId } = await call.fn.invoke(incoming, { requestId: call.requestId });
  if (isAsync && result.statusCode !== 202) throw errorOf(result);
  const out: Record<string, string> = { 'x-fc-request-id': requestId };
  let body = Buffer.alloc(0);
  if (isAsync) {
    out['x-fc-async-task-id'] = result.headers['x-fc-async-task-id'] ?? requestId;
    // With tracing on, the span that accepted the task, as on the trigger's 202.
    const traceparent = result.headers.traceparent;
    if (traceparent) out.traceparent = traceparent;
  } else {
    body = Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
    out['content-type'] = result.headers['content-type'] ?? 'application/octet-stream';
    // The bytes as the app compressed them (the event asked for gzip): named so, or unreadable.
    const encoding = result.headers['content-encoding'];
    if (encoding) out['content-encoding'] = encoding;
    out['x-fc-http-status'] = String(result.statusCode);
    if (result.statusCode >= 500)
      out['x-fc-error-type'] = result.headers['x-fc-error-type'] ?? 'UnhandledInvocationError';
  }
  out['content-length'] = String(body.length);
  call.res.writeHead(isAsync ? 202 : 200, out);
  call.res.end(body);
  log.invocation({
    function: call.fn.spec.name,
    requestId,
    type: isAsync ? 'Async' : 'Sync',
    status: result.statusCode,
    method: 'INVOKE',
    path: incoming.url.split('?')[0] as string,
    durationMs: Math.round(performance.now() - started),
    taskId: out['x-fc-async-task-id'],
    via: 'api',
  });
}
