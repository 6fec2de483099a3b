import { type DestinationErrorCode, FcAsyncError, isFcAsyncError } from '../errors.js';
import type { DestinationRecord } from '../fc-types.js';

/**
 * What {@link deliverRecord} passes to a destination besides the record: the attempt number
 * (1-based) and a signal that aborts when the attempt times out or delivery is cancelled.
 * Destinations may ignore it.
 *
 * @example
 * ```ts
 * const notify: Destination = async (record, context?: DestinationContext) => {
 *   await fetch('https://alerts.example.com/fc', { method: 'POST', body: JSON.stringify(record), signal: context?.signal ?? null });
 * };
 * ```
 */
export interface DestinationContext {
  /** 1 on the first attempt. */
  attempt: number;
  /** Aborts when the attempt times out or the caller's signal aborts. */
  signal: AbortSignal;
}

/**
 * A destination: receives the record (its own copy, which it may change); throwing or rejecting
 * means delivery failed. A plain `Error` counts as retryable; a {@link DestinationError} says
 * whether it is. The helpers in this
 * folder return destinations that also carry `maxRetries` (how often {@link deliverRecord}
 * retries them) and `label` (how logs name them, without secrets).
 *
 * @example
 * ```ts
 * declare const db: { insert(table: string, row: object): Promise<void> };
 * const audit: Destination = async (record) => {
 *   await db.insert('outcomes', { requestId: record.requestContext.requestId, condition: record.requestContext.condition });
 * };
 * ```
 */
export type Destination = ((record: DestinationRecord, context?: DestinationContext) => unknown | Promise<unknown>) & {
  /** Retries {@link deliverRecord} allows after a failed attempt. @default 3 */
  readonly maxRetries?: number;
  /** How log lines and results name the destination. @default the function's name */
  readonly label?: string;
};

/**
 * Why delivering to a destination failed. `retryable` tells {@link deliverRecord} whether
 * another attempt may succeed (5xx, network errors, timeouts) or not (4xx, misconfiguration);
 * `status` is the upstream HTTP status when there was one. The message never holds the record,
 * a header value or a secret.
 *
 * `code` is one of {@link DestinationErrorCode}: `DestinationHttpError`, `DestinationNetworkError`,
 * `DestinationTimeout`, `DestinationAborted`, `DestinationInvokeError`, `DestinationSdkMissing`,
 * `DestinationInvalid` (not a destination, or a record JSON cannot hold: a `BigInt`, a cycle; never
 * retried).
 *
 * @example
 * ```ts
 * throw new DestinationError('DestinationHttpError', 'HTTP 404 from https://hooks.example.com', { retryable: false, status: 404 });
 * ```
 */
export class DestinationError<Code extends string = DestinationErrorCode> extends FcAsyncError<Code> {
  readonly retryable: boolean;
  readonly status: number | undefined;

  constructor(code: Code, message: string, options: { retryable: boolean; status?: number; cause?: unknown }) {
    super(code, message, { statusCode: 502, cause: options.cause });
    this.retryable = options.retryable;
    this.status = options.status;
  }
}

/**
 * True when `value` is a {@link DestinationError}, also across package copies.
 *
 * @example
 * ```ts
 * declare const destination: Destination;
 * declare const record: DestinationRecord;
 * try { await destination(record); } catch (e) { if (isDestinationError(e) && !e.retryable) console.log('gave up', e.code); }
 * ```
 */
export function isDestinationError(value: unknown): value is DestinationError {
  return (
    value instanceof DestinationError ||
    (isFcAsyncError(value) && typeof (value as Partial<DestinationError>).retryable === 'boolean')
  );
}

/**
 * Whether an upstream HTTP status is worth retrying: 5xx, 408 Request Timeout, 429 Too Many Requests.
 *
 * @example
 * ```ts
 * isRetryableStatus(503); // true
 * isRetryableStatus(404); // false
 * ```
 */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
