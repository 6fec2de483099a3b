import type { IncomingMessage } from 'node:http';
import { FcAsyncError } from '@fc-async/core';

/** FC's limit for a request's headers, in bytes (`name: value` lines). */
export const MAX_HEADER_BYTES = 8 * 1024;
/** FC's limit for a request's path plus query, in bytes. */
export const MAX_TARGET_BYTES = 4 * 1024;
/**
 * What Node parses of a request's head (request line and headers) before it refuses it: well past
 * FC's limits above, so that those answer (414, 431) rather than Node's own 431 "Header overflow".
 */
export const NODE_HEAD_BYTES = 64 * 1024;

/** FC's limit for an async call's request body, in bytes (128 KB; `maxAsyncPayloadBytes` by default). */
export const MAX_ASYNC_BODY = 128 * 1024;

/**
 * The 400 for an async call's body past what the trigger reads of any body (FC's 32 MB of a sync
 * call), naming the async limit it is held to: `declared` is its `Content-Length`, or undefined for
 * a chunked body cut once it passed `readLimit`.
 *
 * @example
 * ```ts
 * asyncBodyTooLarge(33554433, MAX_SYNC_BODY).message;
 * // 'The async request body is 33554433 bytes, above FC's limit of 131072 bytes (128 KB) for an async call'
 * ```
 */
export function asyncBodyTooLarge(declared: number | undefined, readLimit: number): FcAsyncError {
  const size = declared === undefined ? `over ${readLimit} bytes` : `${declared} bytes`;
  return new FcAsyncError(
    'InvalidArgument',
    `The async request body is ${size}, above FC's limit of ${MAX_ASYNC_BODY} bytes (128 KB) for an async call`,
    { statusCode: 400 },
  );
}

/**
 * The error for a request over FC's HTTP trigger limits (headers over 8 KB: `431`, path plus
 * query over 4 KB: `414`), `undefined` for one within them. Node refuses headers only past its
 * own, larger limit; these are the ones a deployed function would be held to.
 */
export function overTriggerLimits(req: IncomingMessage): FcAsyncError | undefined {
  const target = req.url ?? '';
  if (target.length > MAX_TARGET_BYTES) {
    return new FcAsyncError(
      'URITooLong',
      `The path plus query is ${target.length} bytes, above FC's limit of ${MAX_TARGET_BYTES}`,
      {
        statusCode: 414,
      },
    );
  }
  const raw = req.rawHeaders;
  let bytes = 0;
  // Node keeps header text as latin1: one char per byte. Each line is `name: value\r\n`.
  for (let i = 0; i < raw.length; i++) bytes += (raw[i] as string).length + 2;
  if (bytes > MAX_HEADER_BYTES) {
    return new FcAsyncError(
      'RequestHeaderFieldsTooLarge',
      `The request headers are ${bytes} bytes, above FC's limit of ${MAX_HEADER_BYTES}`,
      { statusCode: 431 },
    );
  }
  return undefined;
}
