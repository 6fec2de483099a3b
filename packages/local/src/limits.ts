import type { IncomingMessage } from 'node:http';
import { FcAsyncError, asyncBodyTooLarge as tooLargeForAsync } from '@fc-async/core';
import { MAX_SYNC_BODY } from './body.js';

/** FC's limit of a synchronous response's body, in bytes: an answer past it is dropped (see {@link responseTooLarge}). */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/**
 * The 502 of an invocation whose answer passed {@link MAX_RESPONSE_BYTES}, as FC bounds a sync
 * response: `CAResponseTooLarge` for a custom runtime's answer, `ResponseTooLarge` for an app or
 * handler run in-process; one wording for both.
 *
 * @example
 * ```ts
 * responseTooLarge('web', false).message;
 * // "The function web answered more than 33554432 bytes (FC's limit of a response)"
 * ```
 */
export function responseTooLarge(name: string, customRuntime: boolean, cause?: unknown): FcAsyncError {
  return new FcAsyncError(
    customRuntime ? 'CAResponseTooLarge' : 'ResponseTooLarge',
    `The function ${name} answered more than ${MAX_RESPONSE_BYTES} bytes (FC's limit of a response)`,
    { statusCode: 502, cause },
  );
}

/** FC's limit for a request's headers, in bytes (`name: value` lines). */
export const MAX_HEADER_BYTES = 8 * 1024;
/** FC's limit for a request's path plus query, in bytes. */
export const MAX_TARGET_BYTES = 4 * 1024;
/**
 * What Node parses of a request's head (request line and headers) before it refuses it: well past
 * FC's limits above, so that those answer (414, 431) rather than Node's own 431 "Header overflow".
 */
export const NODE_HEAD_BYTES = 64 * 1024;

/**
 * The 400 `InvalidArgument` for an async call's body past `limit`, the async limit in force (the
 * function's `async.maxAsyncPayloadBytes`), in the words of the engine's own refusal (a body it
 * read): `declared` is its `Content-Length`, or undefined for a chunked body cut once it passed
 * `readLimit` (what the trigger reads of any body).
 *
 * @example
 * ```ts
 * asyncBodyTooLarge(200000, 131072).message;
 * // 'The async request body is 200000 bytes, above the limit of 131072'
 * ```
 */
export function asyncBodyTooLarge(
  declared: number | undefined,
  limit: number,
  readLimit = MAX_SYNC_BODY,
): FcAsyncError {
  return tooLargeForAsync(declared === undefined ? `over ${readLimit} bytes` : `${declared} bytes`, limit);
}

/**
 * The async body limit in force for a function: its engine's `maxAsyncPayloadBytes` (at most what
 * the emulator reads of any body), or `undefined` for an engine from a copy of the core without it.
 */
export function asyncLimitOf(engine: { readonly maxAsyncPayloadBytes?: number }): number | undefined {
  const limit = engine.maxAsyncPayloadBytes;
  return typeof limit === 'number' ? Math.min(limit, MAX_SYNC_BODY) : undefined;
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
