import type { DestinationRecord } from '../fc-types.js';
import type { Destination, DestinationContext } from './types.js';
import { objectOption, retriesOption } from './validate.js';

/** Options of {@link functionDestination}. */
export interface FunctionDestinationOptions {
  /** Retries {@link deliverRecord} allows after `fn` throws a retryable error. @default 3 */
  retries?: number;
}

/**
 * A destination that calls `fn(record)` in-process. Throwing or rejecting is a failed delivery:
 * a plain `Error` is retried, a {@link DestinationError} with `retryable: false` is not.
 *
 * @example
 * ```ts
 * createHandler(app, {
 *   destinations: { onFailure: functionDestination(async (record) => alerts.send(record.requestContext.requestId)) },
 * });
 * ```
 */
export function functionDestination(
  fn: (record: DestinationRecord, context?: DestinationContext) => unknown,
  options?: FunctionDestinationOptions,
): Destination {
  if (typeof fn !== 'function') {
    throw new TypeError(`Expected \`fn\` to be a function, got \`${typeof fn}\``);
  }
  const opts = objectOption('options', options);
  const maxRetries = retriesOption('retries', opts.retries);
  const label = `function:${fn.name || 'anonymous'}`;
  return Object.assign(
    async function functionDestination(record: DestinationRecord, context?: DestinationContext) {
      await fn(record, context);
    },
    { maxRetries, label },
  );
}
