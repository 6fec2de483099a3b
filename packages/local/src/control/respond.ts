import type { ServerResponse } from 'node:http';
import { isFcAsyncError } from '@fc-async/core';
import { endAfterBody } from '../linger.js';
import type { EmulatorLog } from '../log.js';

/**
 * An error of the FC API, answered as `{ Code, Message, RequestId }` with its HTTP status, and
 * `headers` (a 503's `Retry-After`).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
  }
}

/** Core codes that FC names differently on its API. */
const FC_CODES: Record<string, [number, string]> = {
  AsyncTaskAlreadyFinished: [400, 'InvalidArgument'],
  InvalidEvent: [400, 'InvalidArgument'],
  InvalidBody: [400, 'InvalidArgument'],
};

/** The API error for anything thrown while answering: FC's code where FC has one, else the core's. */
export function toApiError(error: unknown, log: EmulatorLog): ApiError {
  if (error instanceof ApiError) return error;
  if (isFcAsyncError(error)) {
    const [status, code] = FC_CODES[error.code] ?? [error.statusCode, error.code];
    if (status >= 500 && status !== 503) log.logger.error('control plane request failed', { error });
    // Its headers too: the body budget's `Retry-After`.
    return new ApiError(status, code, error.message, error.headers);
  }
  log.logger.error('control plane request failed', { error });
  return new ApiError(500, 'InternalError', 'Internal error');
}

/**
 * A JSON answer (or none, for 204) with `x-fc-request-id`. `afterBody`: the answer waits for the
 * rest of a body still being sent before it ends ({@link endAfterBody}).
 */
export function sendApi(
  res: ServerResponse,
  requestId: string,
  status: number,
  body?: unknown,
  afterBody = false,
): void {
  if (body === undefined) {
    // A 204 carries no Content-Length (RFC 9110 15.3.5).
    res.writeHead(
      status,
      status === 204 ? { 'x-fc-request-id': requestId } : { 'x-fc-request-id': requestId, 'content-length': '0' },
    );
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'x-fc-request-id': requestId,
  });
  // A refusal of a body not read yet (the body budget, its size): the client may still be sending it.
  if (afterBody) endAfterBody(res, text);
  else res.end(text);
}

/** FC's error body: `{ Code, Message, RequestId }`. */
export function sendApiError(res: ServerResponse, requestId: string, error: ApiError, afterBody = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error.headers) for (const name in error.headers) res.setHeader(name, error.headers[name] as string);
  sendApi(res, requestId, error.status, { Code: error.code, Message: error.message, RequestId: requestId }, afterBody);
}

/** 400 InvalidArgument. */
export const invalid = (message: string) => new ApiError(400, 'InvalidArgument', message);
