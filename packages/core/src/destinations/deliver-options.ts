import { Deadlines } from '../async/deadlines.js';
import { type Logger, silentLogger } from '../logger.js';
import { onAbort } from '../on-abort.js';
import { DEFAULT_RETRIES, MAX_TIMER_MS, nonNegativeOption, positiveOption, retriesOption } from './validate.js';

/**
 * Options of {@link deliverRecord}. Invalid values are logged as errors and replaced by their
 * defaults, since delivery never throws.
 *
 * @example
 * ```ts
 * declare const record: DestinationRecord;
 * const options: DeliverOptions = { logger: createConsoleLogger(), retries: 5, attemptTimeoutMs: 5000 };
 * await deliverRecord([httpDestination('https://hooks.example.com/fc')], record, options);
 * ```
 */
export interface DeliverOptions {
  /** Receives one `warn` per failed attempt and one `error` per destination given up on. */
  logger: Logger;
  /** First retry delay cap; later caps double. @default 500 */
  baseDelayMs?: number | undefined;
  /** Largest retry delay cap. @default 30000 */
  maxDelayMs?: number | undefined;
  /** No retry starts once this much time has passed since the first attempt of a destination. @default 1800000 (30 min) */
  maxElapsedMs?: number | undefined;
  /** Time one attempt may take before it counts as a retryable `DestinationTimeout` and its signal aborts. @default 60000 */
  attemptTimeoutMs?: number | undefined;
  /** Retries of destinations that carry no `maxRetries`. @default 3 */
  retries?: number | undefined;
  /** Waits between attempts; resolves early when `signal` aborts. @default a timer */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** The clock, in epoch milliseconds. @default Date.now */
  now?: (() => number) | undefined;
  /** Source of jitter in [0, 1). @default Math.random */
  random?: (() => number) | undefined;
  /** Aborting stops retries and the attempts under way; unfinished destinations end `Failed`. */
  signal?: AbortSignal | undefined;
}

/** {@link DeliverOptions} with defaults applied. */
export interface Settings {
  logger: Logger;
  baseDelayMs: number;
  maxDelayMs: number;
  maxElapsedMs: number;
  attemptTimeoutMs: number;
  retries: number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  now: () => number;
  random: () => number;
  signal: AbortSignal | undefined;
  /** The attempts' timeouts (`attemptTimeoutMs`), under one timer for every delivery made with these settings. */
  timeouts: Deadlines;
}

/** The keys of {@link DeliverOptions}. */
const DELIVER_KEYS: ReadonlySet<string> = new Set([
  'logger',
  'baseDelayMs',
  'maxDelayMs',
  'maxElapsedMs',
  'attemptTimeoutMs',
  'retries',
  'sleep',
  'now',
  'random',
  'signal',
]);

/** Validates the options; an invalid one is logged and replaced by its default (delivery never throws). */
export function resolveSettings(options: DeliverOptions | undefined): Settings {
  const o = (typeof options === 'object' && options !== null ? options : {}) as Partial<DeliverOptions>;
  const logger = o.logger && typeof o.logger.error === 'function' ? o.logger : silentLogger;
  const pick = <T>(check: () => T, fallback: T): T => {
    try {
      return check();
    } catch (error) {
      logError(logger, (error as Error).message);
      return fallback;
    }
  };
  // A misspelt option is logged like a bad value (deliverRecord never throws), not silently ignored.
  for (const key of Object.keys(o)) {
    if (!DELIVER_KEYS.has(key)) logError(logger, `Unknown deliverRecord() option \`${key}\``);
  }
  const fn = <T>(name: string, value: T | undefined, fallback: T): T =>
    pick(() => {
      if (value === undefined) return fallback;
      if (typeof value !== 'function') {
        throw new TypeError(`Expected \`${name}\` to be a function, got \`${typeof value}\``);
      }
      return value;
    }, fallback);
  const baseDelayMs = pick(() => nonNegativeOption('baseDelayMs', o.baseDelayMs, 500), 500);
  const maxDelayMs = pick(() => nonNegativeOption('maxDelayMs', o.maxDelayMs, 30_000), 30_000);
  const signal = pick(() => {
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
      throw new TypeError(`Expected \`signal\` to be an AbortSignal, got \`${typeof o.signal}\``);
    }
    return o.signal;
  }, undefined);
  const attemptTimeoutMs = pick(() => positiveOption('attemptTimeoutMs', o.attemptTimeoutMs, 60_000), 60_000);
  return {
    logger,
    baseDelayMs,
    maxDelayMs,
    maxElapsedMs: pick(() => positiveOption('maxElapsedMs', o.maxElapsedMs, 1_800_000), 1_800_000),
    attemptTimeoutMs,
    retries: pick(() => retriesOption('retries', o.retries), DEFAULT_RETRIES),
    sleep: fn('sleep', o.sleep, defaultSleep),
    now: fn('now', o.now, Date.now),
    random: fn('random', o.random, Math.random),
    signal,
    timeouts: new Deadlines(attemptTimeoutMs),
  };
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      forget?.();
      resolve();
    };
    const timer = setTimeout(done, Math.min(ms, MAX_TIMER_MS));
    // One listener on the engine's shutdown signal for every delivery waiting (see onAbort).
    const forget = signal && onAbort(signal, done);
  });
}

function logError(logger: Logger, message: string): void {
  try {
    logger.error('fc-async: invalid deliverRecord option, using its default', { error: message });
  } catch {
    // A logger that throws must not break delivery.
  }
}
