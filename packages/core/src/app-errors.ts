import { isError } from './errors.js';
import type { Invocation } from './invocation.js';
import type { Logger } from './logger.js';

/** The longest error message, or error type, kept from a function's `{ errorMessage, errorType }` answer. */
export const ERROR_TEXT_CAP = 4096;

/**
 * `text` from a function's error answer as a task's record and a span keep it: cut at
 * {@link ERROR_TEXT_CAP} characters, an ellipsis marking the cut (an error body is read up to 64 KiB).
 */
export function cutErrorText(text: string): string {
  return text.length > ERROR_TEXT_CAP ? `${text.slice(0, ERROR_TEXT_CAP)}…` : text;
}

/**
 * Whether `error` is the invocation's own abort: its signal aborted (the task was stopped, or it
 * timed out) and the app ended with `signal.reason`, as rejecting with it or `signal.throwIfAborted()`
 * does (or with an error caused by it, as a child process or a stream given the signal does).
 *
 * @example
 * ```ts
 * declare const invocation: Invocation;
 * isInvocationAbort(invocation.signal.reason, invocation); // true once the task was stopped
 * ```
 */
export function isInvocationAbort(error: unknown, invocation: Invocation | undefined): boolean {
  const signal = invocation?.signal;
  if (!signal?.aborted || error === undefined || error === null) return false;
  if (error === signal.reason) return true;
  try {
    return (error as { cause?: unknown }).cause === signal.reason;
  } catch {
    // A `cause` getter that throws, a revoked Proxy: not the abort.
    return false;
  }
}

/**
 * What was thrown, as an `Error` to record and log, never throwing itself: an `Error` as it is; an
 * object with a string `message` (`{ status: 409, message: 'order already paid' }`) that message;
 * anything else its text (`Object.create(null)`, whose `String()` throws, and a `Symbol` included;
 * a revoked `Proxy`, which has none, says so).
 *
 * @example
 * ```ts
 * thrownError({ status: 409, message: 'order already paid' }).message; // 'order already paid'
 * thrownError(Object.create(null)).message; // '[object Object]'
 * ```
 */
export function thrownError(value: unknown): Error {
  if (isError(value)) return value;
  let message: string;
  try {
    const own = value !== null && typeof value === 'object' ? (value as { message?: unknown }).message : undefined;
    message = typeof own === 'string' ? own : String(value);
  } catch {
    message = unreadableText(value);
  }
  return new Error(message);
}

/** `[object Object]` and the like for a value whose text throws; a revoked Proxy throws even for that. */
function unreadableText(value: unknown): string {
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return 'A thrown value that could not be read';
  }
}

/**
 * An error's message and name for a record, read without throwing (a getter that throws, a name
 * that is no string): `'Error'` and the thrown value's text stand in.
 *
 * @example
 * ```ts
 * thrownText(new RangeError('too far')); // { message: 'too far', name: 'RangeError' }
 * thrownText(Symbol('odd')); // { message: 'Symbol(odd)', name: 'Error' }
 * ```
 */
export function thrownText(value: unknown): { message: string; name: string } {
  const error = thrownError(value);
  let message: string;
  let name: string;
  try {
    message = String(error.message);
  } catch {
    message = 'The error could not be read';
  }
  try {
    name = typeof error.name === 'string' && error.name !== '' ? error.name : 'Error';
  } catch {
    name = 'Error';
  }
  return { message, name };
}

/** Errors {@link logAppError} wrote at `error`: the handler's own failure line leaves them out. */
const loggedAppErrors = new WeakSet<object>();

/**
 * Whether {@link logAppError} already logged `error` (an adapter that logged it, then destroyed the
 * response with it), so that the handler does not log the same failure a second time.
 */
export function appErrorLogged(error: unknown): boolean {
  return typeof error === 'object' && error !== null && loggedAppErrors.has(error);
}

/**
 * Logs an error that an app answered with a 5xx, as each adapter does: at `error`, with its stack.
 * The invocation's own abort is the exception (see {@link isInvocationAbort}): a stop the user asked
 * for, or a timeout the task's record already says, is told at `info` without a stack, not as a crash.
 * An error logged here that then reaches the handler (a response destroyed with it) is not logged again.
 *
 * @example
 * ```ts
 * declare const req: import('node:http').IncomingMessage;
 * declare const error: unknown;
 * logAppError(silentLogger, 'express', error, getInvocation(req));
 * ```
 */
export function logAppError(logger: Logger, app: string, error: unknown, invocation: Invocation | undefined): void {
  const requestId = invocation?.requestId;
  if (isInvocationAbort(error, invocation)) {
    const code = (invocation?.signal.reason as { code?: unknown } | undefined)?.code;
    logger.info(`${app} app ended on its invocation's abort`, { requestId, code });
    return;
  }
  logger.error(`${app} app failed`, { error, requestId });
  if (typeof error === 'object' && error !== null) loggedAppErrors.add(error);
}

/**
 * The end of an adapter's "Expected `app` to be ..." message when `app` is a NestJS application
 * (`NestFactory.create()`'s), which wraps the Express or Fastify app the adapter takes: what to
 * pass instead. Empty for anything else.
 *
 * @internal
 * @example
 * ```ts
 * import { nestAppHint } from '@fc-async/core';
 *
 * function checkApp(app: unknown): void {
 *   if (typeof app !== 'function') throw new TypeError(`Expected \`app\` to be an Express application${nestAppHint(app)}`);
 * }
 * ```
 */
export function nestAppHint(app: unknown): string {
  const nest = app as { getHttpAdapter?: unknown; init?: unknown } | null;
  return typeof nest === 'object' &&
    nest !== null &&
    typeof nest.getHttpAdapter === 'function' &&
    typeof nest.init === 'function'
    ? '; this is a NestJS application: pass the app under it, `app.getHttpAdapter().getInstance()`, after `await app.init()`'
    : '';
}
