import type { Invocation } from './invocation.js';
import type { Logger } from './logger.js';

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
  return error === signal.reason || (error as { cause?: unknown }).cause === signal.reason;
}

/**
 * Logs an error that an app answered with a 5xx, as each adapter does: at `error`, with its stack.
 * The invocation's own abort is the exception (see {@link isInvocationAbort}): a stop the user asked
 * for, or a timeout the task's record already says, is told at `info` without a stack, not as a crash.
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
}
