import type { IncomingMessage } from 'node:http';
import { abandonResponse } from '../bridge.js';

/**
 * An attempt the engine is done with while its app still runs (it timed out, its stop's grace
 * ran out, a shutdown cut it): what the app writes from then on goes nowhere, and must not be
 * held. The engine marks an attempt's invocation before its run ({@link expectAbandon}); the
 * runner of the app registers the request it made ({@link whenAbandoned}); the engine calls
 * {@link abandonRun} once the attempt is settled, which lets go of the response unless it ended.
 * Invocations the engine did not mark (sync calls) are never registered.
 */
const runs = new WeakMap<object, IncomingMessage | null>();

/** Marks `invocation` as an attempt whose response may be let go of before it ends. */
export function expectAbandon(invocation: object): void {
  runs.set(invocation, null);
}

/** Registers the bridged request of `invocation`, when it is a marked attempt. */
export function whenAbandoned(invocation: object, req: IncomingMessage): void {
  if (runs.has(invocation)) runs.set(invocation, req);
}

/** The attempt is settled: lets go of its response (nothing once it ended) and forgets it. */
export function abandonRun(invocation: object): void {
  const req = runs.get(invocation);
  runs.delete(invocation);
  if (req) abandonResponse(req);
}
