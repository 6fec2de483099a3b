import type { DestinationRecord } from '../fc-types.js';
import { LazyAbort } from '../lazy-abort.js';
import { type Logger, silentLogger } from '../logger.js';
import { onAbort } from '../on-abort.js';
import { type DeliverOptions, resolveSettings, type Settings } from './deliver-options.js';
import { copyRecord } from './record.js';
import { type Destination, type DestinationContext, DestinationError, isDestinationError } from './types.js';

export type { DeliverOptions } from './deliver-options.js';

/**
 * How delivery to one destination ended.
 *
 * @example
 * ```ts
 * declare const result: DeliveryResult;
 * for (const outcome of result.destinations) console.log(outcome.label, outcome.status, outcome.attempts, outcome.error);
 * ```
 */
export interface DestinationOutcome {
  label: string;
  status: 'Succeeded' | 'Failed';
  attempts: number;
  /** `<code>: <message>` of the last failure, when `Failed`. */
  error?: string;
}

/**
 * What {@link deliverRecord} resolves to: `Succeeded` when every destination took the record,
 * `Failed` when any did not, `None` when there was no destination. `attempts` counts the attempts
 * of all destinations; `errors` holds `<label>: <code>: <message>` per failed destination.
 *
 * @example
 * ```ts
 * declare const record: DestinationRecord;
 * const result: DeliveryResult = await deliverRecord([jsonlDestination('out.jsonl')], record, { logger: silentLogger });
 * if (result.status === 'Failed') console.warn(result.errors.join('; '));
 * ```
 */
export interface DeliveryResult {
  status: 'Succeeded' | 'Failed' | 'None';
  attempts: number;
  errors: string[];
  destinations: DestinationOutcome[];
}

/**
 * Delivers one record to every destination in parallel, retrying each failing one with
 * exponential backoff and full jitter (delay before retry n: random × min(maxDelayMs,
 * baseDelayMs × 2^(n−1))) while its error is retryable, up to its `maxRetries` and within
 * `maxElapsedMs`. A plain error counts as retryable; a {@link DestinationError} says. Failures are
 * logged with the destination's label, attempt and error code, never the record's payloads.
 * Never throws and never rejects: synchronous throws, rejections and hung attempts (past
 * `attemptTimeoutMs`) all become failed attempts.
 *
 * @example
 * ```ts
 * declare const record: DestinationRecord;
 * const url = 'https://hooks.example.com/fc';
 * const logger = createConsoleLogger();
 * const result = await deliverRecord([httpDestination(url), jsonlDestination('out.jsonl')], record, { logger });
 * if (result.status === 'Failed') console.warn(result.errors);
 * ```
 */
export async function deliverRecord(
  destinations: Destination | readonly (Destination | undefined)[] | undefined,
  record: DestinationRecord,
  options: DeliverOptions,
): Promise<DeliveryResult> {
  let settings: Settings;
  try {
    settings = resolveSettings(options);
  } catch (error) {
    return internalFailure(options?.logger, error);
  }
  try {
    return await deliverResolved(destinations, record, settings);
  } finally {
    settings.timeouts.idle(); // its own timer: none is left armed once the record is delivered
  }
}

/** {@link deliverRecord} with its options resolved once by the caller (the engine, per task). */
export async function deliverResolved(
  destinations: Destination | readonly (Destination | undefined)[] | undefined,
  record: DestinationRecord,
  settings: Settings,
): Promise<DeliveryResult> {
  try {
    if (!Array.isArray(destinations)) {
      // One destination, the common case: no arrays to build and sum over.
      if (destinations == null) return { status: 'None', attempts: 0, errors: [], destinations: [] };
      const outcome = await deliverOne(destinations as Destination, 0, record, safeRequestId(record), settings);
      return {
        status: outcome.status,
        attempts: outcome.attempts,
        errors: outcome.status === 'Failed' ? [`${outcome.label}: ${outcome.error}`] : [],
        destinations: [outcome],
      };
    }
    const list = destinations.filter((d) => d != null);
    if (list.length === 0) return { status: 'None', attempts: 0, errors: [], destinations: [] };
    const requestId = safeRequestId(record);
    const outcomes = await Promise.all(
      list.map((d, i) => deliverOne(d as Destination, i, record, requestId, settings)),
    );
    const failed = outcomes.filter((o) => o.status === 'Failed');
    return {
      status: failed.length === 0 ? 'Succeeded' : 'Failed',
      attempts: outcomes.reduce((sum, o) => sum + o.attempts, 0),
      errors: failed.map((o) => `${o.label}: ${o.error}`),
      destinations: outcomes,
    };
  } catch (error) {
    return internalFailure(settings.logger, error);
  }
}

/** Unreachable by design; kept so a bug here can never reject the caller. */
function internalFailure(logger: Logger | undefined, error: unknown): DeliveryResult {
  const message = `deliverRecord failed internally: ${errorInfo(error).message}`;
  log(logger, 'error', 'fc-async: destination delivery failed internally', { error: message });
  return { status: 'Failed', attempts: 0, errors: [message], destinations: [] };
}

/**
 * A delivery the engine's shutdown ended: not the destination's failure. A durable backend makes
 * it again on the next start (the engine says so); memory() records it Failed.
 */
const CUT_SHORT = 'fc-async: destination delivery cut short by shutdown';

/**
 * The reason the engine aborts its deliveries with at the end of close(): only a signal aborted
 * with it is a shutdown (platform mode's 10 s bound, or a caller's own signal, is a failure).
 */
export const SHUTTING_DOWN: Error = Object.freeze(
  Object.assign(new Error('The function is shutting down'), { name: 'ShuttingDown' }),
);

/** Whether the delivery's signal was aborted by a shutdown. */
const shutDown = (s: Settings) => s.signal?.aborted === true && s.signal.reason === SHUTTING_DOWN;

async function deliverOne(
  destination: Destination,
  index: number,
  record: DestinationRecord,
  requestId: string | undefined,
  s: Settings,
): Promise<DestinationOutcome> {
  let label = `destination#${index}`;
  let attempts = 0;
  try {
    label = labelOf(destination, index);
    if (typeof destination !== 'function') {
      throw new DestinationError('DestinationInvalid', `Expected a destination function, got ${typeof destination}`, {
        retryable: false,
      });
    }
    const maxRetries = retriesOf(destination, s.retries);
    const start = s.now();
    for (;;) {
      if (s.signal?.aborted) throw abortedError(s.signal.reason);
      attempts += 1;
      try {
        await attempt(destination, record, attempts, s);
        if (attempts > 1) {
          log(s.logger, 'info', 'fc-async: destination delivered after retries', {
            destination: label,
            requestId,
            attempts,
          });
        }
        return { label, status: 'Succeeded', attempts };
      } catch (error) {
        const info = errorInfo(error);
        const delay = Math.floor(s.random() * Math.min(s.maxDelayMs, s.baseDelayMs * 2 ** (attempts - 1)));
        const retry =
          info.retryable && attempts <= maxRetries && !s.signal?.aborted && s.now() - start + delay <= s.maxElapsedMs;
        const fields = {
          destination: label,
          requestId,
          attempt: attempts,
          maxAttempts: maxRetries + 1,
          code: info.code,
          error: info.message,
          retryable: info.retryable,
        };
        if (!retry) {
          if (shutDown(s)) log(s.logger, 'warn', CUT_SHORT, fields);
          else log(s.logger, 'error', 'fc-async: destination delivery failed, giving up', fields);
          return { label, status: 'Failed', attempts, error: `${info.code}: ${info.message}` };
        }
        log(s.logger, 'warn', 'fc-async: destination delivery failed, retrying', { ...fields, retryInMs: delay });
        await safeSleep(s, delay);
      }
    }
  } catch (error) {
    const info = errorInfo(error);
    const cut = shutDown(s);
    log(s.logger, cut ? 'warn' : 'error', cut ? CUT_SHORT : 'fc-async: destination delivery failed, giving up', {
      destination: label,
      requestId,
      attempt: attempts,
      code: info.code,
      error: info.message,
    });
    return { label, status: 'Failed', attempts, error: `${info.code}: ${info.message}` };
  }
}

/**
 * What a destination gets besides the record. Its signal is made when first read: Node 20 takes
 * about 6 µs to create an `AbortSignal`, and most destinations never look at it.
 */
class AttemptContext extends LazyAbort implements DestinationContext {
  constructor(readonly attempt: number) {
    super();
  }
}

/** One call of the destination, bounded by `attemptTimeoutMs` and the caller's signal. */
function attempt(destination: Destination, record: DestinationRecord, n: number, s: Settings): Promise<unknown> {
  const context = new AttemptContext(n);
  return new Promise((resolve, reject) => {
    let forget: (() => void) | undefined;
    const timeout = s.timeouts.add(() => {
      const error = new DestinationError('DestinationTimeout', `Attempt took longer than ${s.attemptTimeoutMs} ms`, {
        retryable: true,
      });
      context.abort(error);
      settle(reject, error);
    });
    const signal = s.signal;
    if (signal) {
      forget = onAbort(signal, () => {
        const error = abortedError(signal.reason);
        context.abort(error);
        settle(reject, error);
      });
    }
    const settle = (done: (value: unknown) => void, value: unknown) => {
      timeout.clear();
      forget?.();
      done(value);
    };
    let result: unknown;
    try {
      // Its own copy: what one destination does to its record never reaches another call.
      result = destination(copyRecord(record), context);
    } catch (error) {
      settle(reject, error);
      return;
    }
    // A returned promise (or thenable) is adopted; anything else is the attempt's value.
    Promise.resolve(result).then(
      (value) => settle(resolve, value),
      (error) => settle(reject, error),
    );
  });
}

async function safeSleep(s: Settings, ms: number): Promise<void> {
  try {
    await s.sleep(ms, s.signal);
  } catch {
    // An injected sleep that rejects (e.g. on abort) only ends the wait.
  }
}

/** The error of a delivery its caller aborted: the reason itself when it is a `DestinationError` that says why. */
function abortedError(reason: unknown): DestinationError {
  if (isDestinationError(reason)) return reason;
  return new DestinationError('DestinationAborted', 'Delivery was aborted', { retryable: false });
}

const MAX_MESSAGE = 500;

/** Code, message and retryability of anything thrown; messages are cut to 500 characters. */
function errorInfo(error: unknown): { code: string; message: string; retryable: boolean } {
  let code = 'Error';
  let message: string;
  let retryable = true;
  if (isDestinationError(error)) {
    code = error.code;
    message = error.message;
    retryable = error.retryable;
  } else if (error instanceof Error) {
    const c = (error as { code?: unknown }).code;
    code = typeof c === 'string' && c ? c : error.name || 'Error';
    // Node's system errors start their message with their code (`ENOENT: no such file...`): once is enough.
    message = error.message.startsWith(`${code}: `) ? error.message.slice(code.length + 2) : error.message;
  } else {
    message = `non-error thrown: ${typeof error === 'string' ? error : typeof error}`;
  }
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 3)}...`;
  return { code, message, retryable };
}

function labelOf(destination: Destination, index: number): string {
  if (typeof destination !== 'function') return `destination#${index}`;
  if (typeof destination.label === 'string' && destination.label) return destination.label;
  return destination.name ? `function:${destination.name}` : `destination#${index}`;
}

function retriesOf(destination: Destination, fallback: number): number {
  const n = destination.maxRetries;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : fallback;
}

function safeRequestId(record: DestinationRecord): string | undefined {
  try {
    const id = record?.requestContext?.requestId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function log(logger: Logger | undefined, level: keyof Logger, message: string, fields: Record<string, unknown>): void {
  try {
    (logger ?? silentLogger)[level](message, fields);
  } catch {
    // A logger that throws must not break delivery.
  }
}
