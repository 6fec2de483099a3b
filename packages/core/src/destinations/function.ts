import type { DestinationRecord } from '../fc-types.js';
import { settledWithin } from './timeout.js';
import { type Destination, type DestinationContext, DestinationError } from './types.js';
import { objectOption, retriesOption, timeoutOption } from './validate.js';

/**
 * Options of {@link functionDestination}.
 *
 * @example
 * ```ts
 * const options: FunctionDestinationOptions = { retries: 0, timeoutMs: 2000 };
 * const onSuccess = functionDestination((record) => console.log(record.requestContext.requestId), options);
 * ```
 */
export interface FunctionDestinationOptions {
  /** Retries {@link deliverRecord} allows after `fn` throws a retryable error. @default 3 */
  retries?: number | undefined;
  /**
   * Time one call of `fn` may take, in milliseconds: past it the call is a failed, retryable
   * delivery (`DestinationTimeout`) and the signal `fn` was given aborts.
   * @default no bound of its own (each attempt of {@link deliverRecord} is bounded, 60 s by default)
   */
  timeoutMs?: number | undefined;
}

/**
 * A destination that calls `fn(record, context)` in-process. Throwing or rejecting is a failed
 * delivery: a plain `Error` is retried, a {@link DestinationError} with `retryable: false` is not.
 * `context.signal` aborts when the call times out; `fn` may pass it on to what it awaits.
 * Each call gets its own copy of the record ({@link deliverRecord} makes it): `fn` may change it
 * (parse `responsePayload` in place, drop a field) without changing what other destinations, or
 * its own retries, get.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * const alertsUrl = 'https://alerts.example.com/fc';
 * createFcHandler(app, {
 *   destinations: {
 *     onFailure: functionDestination(
 *       (record, context) => fetch(alertsUrl, { method: 'POST', body: JSON.stringify(record), signal: context?.signal ?? null }),
 *       { timeoutMs: 5000 },
 *     ),
 *   },
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
  const opts = objectOption('options', options, 'functionDestination()', ['retries', 'timeoutMs']);
  const maxRetries = retriesOption('retries', opts.retries);
  const timeoutMs = opts.timeoutMs === undefined ? undefined : timeoutOption('timeoutMs', opts.timeoutMs, 0);
  const label = `function:${fn.name || 'anonymous'}`;
  return Object.assign(
    async function functionDestination(record: DestinationRecord, context?: DestinationContext) {
      if (timeoutMs === undefined) {
        await fn(record, context);
        return;
      }
      await withinTimeout(fn, record, context, timeoutMs, label);
    },
    { maxRetries, label },
  );
}

/** `fn(record, context)` with its own signal, failing with a retryable `DestinationTimeout` past `timeoutMs`. */
async function withinTimeout(
  fn: (record: DestinationRecord, context?: DestinationContext) => unknown,
  record: DestinationRecord,
  context: DestinationContext | undefined,
  timeoutMs: number,
  label: string,
): Promise<void> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(context?.signal?.reason);
  if (context?.signal?.aborted) onAbort();
  else context?.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await settledWithin(
      Promise.resolve(fn(record, { attempt: context?.attempt ?? 1, signal: controller.signal })),
      timeoutMs,
      `${label} took longer than ${timeoutMs} ms`,
      (error) => controller.abort(error),
    );
  } finally {
    context?.signal?.removeEventListener('abort', onAbort);
  }
}
