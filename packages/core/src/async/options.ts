import { MAX_TIMER_MS } from '../destinations/validate.js';
import type { BridgeResponse } from '../response.js';
import type { AsyncBackend } from './backend.js';

/**
 * Where async invocations are queued: `platform` (FC queued them already: run, then call the
 * destination hooks), `local` (no FC in front: answer 202 and queue in-process), or `auto`
 * (platform when `FC_FUNCTION_NAME` and `FC_REGION` are set, else local).
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * const mode: AsyncMode = process.env.FC_ASYNC_MODE === 'local' ? 'local' : 'auto';
 * createFcHandler(app, { async: { mode } });
 * ```
 */
export type AsyncMode = 'auto' | 'local' | 'platform';

/**
 * {@link BackoffOptions} with every value set (an option may be given as `undefined`): what
 * {@link backoffDelay} takes.
 *
 * @example
 * ```ts
 * const backoff: ResolvedBackoff = { baseMs: 1000, maxMs: 60_000, jitter: 'none' };
 * ```
 */
export type ResolvedBackoff = { [K in keyof BackoffOptions]-?: Exclude<BackoffOptions[K], undefined> };

/**
 * Delay between retries after a failed attempt: `min(maxMs, baseMs × 2^(retry − 1))`, then
 * jittered. `equal` keeps half and randomises half; `full` randomises all; `none` keeps all.
 *
 * @example
 * ```ts
 * const backoff: BackoffOptions = { baseMs: 500, maxMs: 30_000, jitter: 'full' };
 * ```
 */
export interface BackoffOptions {
  /** @default 1000 */
  baseMs?: number | undefined;
  /** @default 60000 */
  maxMs?: number | undefined;
  /** @default 'equal' */
  jitter?: 'equal' | 'full' | 'none' | undefined;
}

/**
 * Every async option (`options.async`).
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, { async: { mode: 'local', concurrency: 4, maxAsyncRetryAttempts: 2, timeoutSeconds: 900 } });
 * ```
 */
export interface AsyncOptions {
  /** @default 'auto' */
  mode?: AsyncMode | undefined;
  /** Attempts running at once (local mode). @default 10 */
  concurrency?: number | undefined;
  /** Tasks waiting (queued, delayed, backing off, or being delivered) before new ones get 429. @default 10000 */
  maxQueuedTasks?: number | undefined;
  /**
   * Bytes the destination calls under way may hold (each its task's request and answer, about)
   * before new async requests get 429: a destination that is down, with large answers, cannot pile
   * them up in memory (a count alone let 300 pending 1 MiB records take 1.6 GB). @default 268435456 (256 MiB)
   */
  maxDeliveryBytes?: number | undefined;
  /** Largest async request body; larger answers 400 `InvalidArgument`, as FC's HTTP trigger does. @default 131072 (128 KB) */
  maxAsyncPayloadBytes?: number | undefined;
  /** Retries after a failed attempt, 0..8. @default 3 */
  maxAsyncRetryAttempts?: number | undefined;
  /** An event older than this when an attempt would start becomes `Expired`, 1..604800. @default 86400 */
  maxAsyncEventAgeInSeconds?: number | undefined;
  /** Time an attempt may run before it fails with `InvocationError` and its signal aborts. @default 60 */
  timeoutSeconds?: number | undefined;
  /** Whether a response counts as a failed attempt. @default status ≥ 500 */
  isFailure?: ((response: BridgeResponse) => boolean) | undefined;
  /** Retry delays. */
  backoff?: BackoffOptions | undefined;
  /**
   * How long a stopped running attempt may take to settle before it is recorded `Stopped`; on FC
   * (a custom runtime), how long an invocation FC ended (closed its request) is waited for.
   * @default 10000
   */
  stopGraceMs?: number | undefined;
  /** Where tasks are queued and recorded. @default memory() */
  backend?: AsyncBackend | undefined;
  /** The function name in task ARNs when neither FC's headers, context nor env give one. @default 'fc-async-local' */
  functionName?: string | undefined;
}

/**
 * {@link AsyncOptions} with every default applied.
 *
 * @example
 * ```ts
 * const resolved: ResolvedAsyncOptions = resolveAsyncOptions({ concurrency: 4 });
 * resolved.concurrency; // 4
 * ```
 */
export interface ResolvedAsyncOptions {
  mode: AsyncMode;
  concurrency: number;
  maxQueuedTasks: number;
  maxDeliveryBytes: number;
  maxAsyncPayloadBytes: number;
  maxAsyncRetryAttempts: number;
  maxAsyncEventAgeInSeconds: number;
  timeoutSeconds: number;
  isFailure: (response: BridgeResponse) => boolean;
  backoff: ResolvedBackoff;
  stopGraceMs: number;
  backend: AsyncBackend | undefined;
  functionName: string;
}

const defaultIsFailure = (response: BridgeResponse) => response.statusCode >= 500;

function integer(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `from ${min} and up` : `from ${min} to ${max}`;
    throw new TypeError(
      `Expected \`async.${name}\` to be an integer ${range}, got \`${String(value)}\` (${typeof value})`,
    );
  }
  return value;
}

function positive(name: string, value: unknown, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new TypeError(
      `Expected \`async.${name}\` to be a number above 0 and at most ${max}, got \`${String(value)}\``,
    );
  }
  return value;
}

const KNOWN = new Set([
  'mode',
  'concurrency',
  'maxQueuedTasks',
  'maxDeliveryBytes',
  'maxAsyncPayloadBytes',
  'maxAsyncRetryAttempts',
  'maxAsyncEventAgeInSeconds',
  'timeoutSeconds',
  'isFailure',
  'backoff',
  'stopGraceMs',
  'backend',
  'functionName',
]);

const BACKOFF_KEYS = new Set(['baseMs', 'maxMs', 'jitter']);

/**
 * Validates `options.async` eagerly and applies defaults, without touching the caller's object.
 * Throws a `TypeError` naming the option, the expected range and the value received.
 *
 * @example
 * ```ts
 * resolveAsyncOptions({ concurrency: 0 }); // TypeError: Expected `async.concurrency` to be an integer from 1 to 10000, got `0` (number)
 * ```
 */
export function resolveAsyncOptions(options: AsyncOptions = {}): ResolvedAsyncOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`async\` to be an object, got \`${String(options)}\``);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option \`async.${key}\``);
  }
  const mode = options.mode ?? 'auto';
  if (mode !== 'auto' && mode !== 'local' && mode !== 'platform') {
    throw new TypeError(`Expected \`async.mode\` to be 'auto', 'local' or 'platform', got \`${String(mode)}\``);
  }
  if (options.isFailure !== undefined && typeof options.isFailure !== 'function') {
    throw new TypeError(`Expected \`async.isFailure\` to be a function, got \`${typeof options.isFailure}\``);
  }
  const backoff = options.backoff ?? {};
  if (typeof backoff !== 'object' || backoff === null || Array.isArray(backoff)) {
    throw new TypeError(`Expected \`async.backoff\` to be an object, got \`${String(backoff)}\``);
  }
  for (const key of Object.keys(backoff)) {
    if (!BACKOFF_KEYS.has(key)) throw new TypeError(`Unknown option \`async.backoff.${key}\``);
  }
  const baseMs = positive('backoff.baseMs', backoff.baseMs, 3_600_000, 1000);
  const maxMs = positive('backoff.maxMs', backoff.maxMs, 86_400_000, 60_000);
  if (maxMs < baseMs)
    throw new TypeError(
      `Expected \`async.backoff.maxMs\` (${maxMs}) to be at least \`async.backoff.baseMs\` (${baseMs})`,
    );
  const jitter = backoff.jitter ?? 'equal';
  if (jitter !== 'equal' && jitter !== 'full' && jitter !== 'none') {
    throw new TypeError(`Expected \`async.backoff.jitter\` to be 'equal', 'full' or 'none', got \`${String(jitter)}\``);
  }
  const backend = options.backend;
  if (
    backend !== undefined &&
    (typeof backend !== 'object' || backend === null || typeof backend.create !== 'function')
  ) {
    throw new TypeError(
      'Expected `async.backend` to be a backend such as memory(), sqlite(path) or bullmq(connection)',
    );
  }
  const startTimeoutMs: unknown = backend?.startTimeoutMs;
  if (
    startTimeoutMs !== undefined &&
    startTimeoutMs !== Number.POSITIVE_INFINITY &&
    (typeof startTimeoutMs !== 'number' ||
      !Number.isInteger(startTimeoutMs) ||
      startTimeoutMs < 1 ||
      startTimeoutMs > MAX_TIMER_MS)
  ) {
    throw new TypeError(
      `Expected \`async.backend.startTimeoutMs\` to be a number of ms from 1 to ${MAX_TIMER_MS}, or Infinity, got \`${String(startTimeoutMs)}\``,
    );
  }
  if (options.functionName !== undefined && (typeof options.functionName !== 'string' || !options.functionName)) {
    throw new TypeError(
      `Expected \`async.functionName\` to be a non-empty string, got \`${String(options.functionName)}\``,
    );
  }
  return {
    mode,
    concurrency: integer('concurrency', options.concurrency, 1, 10_000, 10),
    maxQueuedTasks: integer('maxQueuedTasks', options.maxQueuedTasks, 1, Number.MAX_SAFE_INTEGER, 10_000),
    maxDeliveryBytes: integer(
      'maxDeliveryBytes',
      options.maxDeliveryBytes,
      1,
      Number.MAX_SAFE_INTEGER,
      256 * 1024 * 1024,
    ),
    maxAsyncPayloadBytes: integer(
      'maxAsyncPayloadBytes',
      options.maxAsyncPayloadBytes,
      1,
      32 * 1024 * 1024,
      128 * 1024,
    ),
    maxAsyncRetryAttempts: integer('maxAsyncRetryAttempts', options.maxAsyncRetryAttempts, 0, 8, 3),
    maxAsyncEventAgeInSeconds: integer(
      'maxAsyncEventAgeInSeconds',
      options.maxAsyncEventAgeInSeconds,
      1,
      604_800,
      86_400,
    ),
    timeoutSeconds: positive('timeoutSeconds', options.timeoutSeconds, 86_400, 60),
    isFailure: options.isFailure ?? defaultIsFailure,
    backoff: { baseMs, maxMs, jitter },
    stopGraceMs: integer('stopGraceMs', options.stopGraceMs, 0, 3_600_000, 10_000),
    backend,
    functionName: options.functionName ?? 'fc-async-local',
  };
}

/**
 * The resolved mode: `auto` becomes `platform` on FC (both `FC_FUNCTION_NAME` and `FC_REGION`
 * set), else `local`.
 *
 * @example
 * ```ts
 * resolveMode('auto', { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' }); // 'platform'
 * ```
 */
export function resolveMode(mode: AsyncMode, env: Record<string, string | undefined>): 'local' | 'platform' {
  if (mode !== 'auto') return mode;
  return env.FC_FUNCTION_NAME && env.FC_REGION ? 'platform' : 'local';
}

/**
 * The delay before retry number `retry` (1-based).
 *
 * @example
 * ```ts
 * backoffDelay(3, { baseMs: 1000, maxMs: 60_000, jitter: 'none' }); // 4000
 * ```
 */
export function backoffDelay(retry: number, backoff: ResolvedBackoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, retry - 1));
  if (backoff.jitter === 'none') return ceiling;
  if (backoff.jitter === 'full') return Math.floor(random() * ceiling);
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}
