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
 * A call answers within the function's timeout, as on FC: an app that never answers (a middleware
 * that neither responds nor calls next) gets a 504 `FunctionTimeout` instead of a hung caller.
 * Async calls are answered 202 at once; their attempts have the engine's own timeout.
 */
export function withinTimeout(answer: Promise<FcHttpResult>, identity: FunctionIdentity): Promise<FcHttpResult> {
  return within(answer, identity.timeout * 1000, () => ({
    statusCode: 504,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-fc-error-type': 'UnhandledInvocationError' },
    isBase64Encoded: false,
    body: JSON.stringify({
      code: 'FunctionTimeout',
      message: `${identity.name} did not answer within its timeout of ${identity.timeout} s`,
    }),
  }));
}
