import { FcAsyncError, type FcHttpResult } from '@fc-async/core';
import type { FunctionIdentity } from './event.js';
import { within } from './within.js';

/**
 * Boots a Fastify app at startup (after the adapter set it up), so that a plugin that fails to
 * register refuses the start with its message instead of failing every request with a 500.
 */
export async function fastifyReady(app: unknown, file: string): Promise<void> {
  try {
    await (app as { ready(): PromiseLike<unknown> }).ready();
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new FcAsyncError('EntryLoadFailed', `The Fastify app of ${file} failed to start: ${message}`, { cause });
  }
}

/**
 * FC's error for a sync call the function did not answer within its timeout: 504
 * `FunctionTimeout`, a function error (`x-fc-error-type`). The emulator gives it to the core
 * handler as the reason of the call's deadline; the core answers with it and ends the span.
 */
export function functionTimeout(identity: FunctionIdentity): FcAsyncError {
  const message = `${identity.name} did not answer within its timeout of ${identity.timeout} s`;
  return new FcAsyncError('FunctionTimeout', message, {
    statusCode: 504,
    headers: { 'x-fc-error-type': 'UnhandledInvocationError' },
  });
}

/**
 * A call answers within the function's timeout, as on FC: an app that never answers (a middleware
 * that neither responds nor calls next) gets a 504 `FunctionTimeout` instead of a hung caller.
 * For a handler without the core's entry, which cannot be given the deadline (see function.ts).
 * Async calls are answered 202 at once; their attempts have the engine's own timeout.
 */
export function withinTimeout(answer: Promise<FcHttpResult>, identity: FunctionIdentity): Promise<FcHttpResult> {
  return within(answer, identity.timeout * 1000, () => {
    const error = functionTimeout(identity);
    return {
      statusCode: 504,
      headers: { 'content-type': 'application/json; charset=utf-8', ...error.headers },
      isBase64Encoded: false,
      body: JSON.stringify(error.toJSON()),
    };
  });
}
