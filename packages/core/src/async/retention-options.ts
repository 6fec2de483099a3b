import { MAX_TIMER_MS } from '../destinations/validate.js';

/**
 * Retention of a durable store's finished tasks: the options every durable backend shares (its
 * own options interface extends this one), pruned by a {@link RetentionPruner} subclass.
 *
 * @example
 * ```ts
 * interface MyBackendOptions extends RetentionOptions {
 *   url: string;
 * }
 * const options: MyBackendOptions = { url: 'db://tasks', maxTasks: 50_000, retentionMs: 24 * 3600 * 1000 };
 * ```
 */
export interface RetentionOptions {
  /** Finished tasks kept; past it the oldest finished go first. Unfinished tasks are never dropped. @default 100000 */
  maxTasks?: number | undefined;
  /** How long a finished task is kept. @default 7 days */
  retentionMs?: number | undefined;
  /** How often finished tasks past `maxTasks` or `retentionMs` are deleted (in batches of 500). @default 60000 */
  pruneIntervalMs?: number | undefined;
}

/**
 * {@link RetentionOptions} with every default applied.
 *
 * @example
 * ```ts
 * const retention: ResolvedRetentionOptions = resolveRetentionOptions({ maxTasks: 50_000 });
 * retention.pruneIntervalMs; // 60000
 * ```
 */
export type ResolvedRetentionOptions = { [K in keyof RetentionOptions]-?: Exclude<RetentionOptions[K], undefined> };

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;

/**
 * An integer option from `min` up (to `max` when given, e.g. 2147483647 for a timer's
 * delay), `fallback` when `undefined`; anything else throws a `TypeError` naming the option and the value.
 *
 * @example
 * ```ts
 * declare const options: { openTimeoutMs?: unknown };
 * integerOption('openTimeoutMs', options.openTimeoutMs, 0, 2000);
 * integerOption('openTimeoutMs', -1, 0, 2000); // TypeError: Expected `openTimeoutMs` to be an integer from 0 and up, got `-1`
 * ```
 */
export function integerOption(name: string, value: unknown, min: number, fallback: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min} and up, got \`${String(value)}\``);
  }
  if (value > max) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got \`${value}\``);
  }
  return value;
}

/**
 * Validates the retention fields of a backend's options object (checked to be an object by the
 * caller), in the order `maxTasks`, `retentionMs`, `pruneIntervalMs`; the object is never written to.
 *
 * @example
 * ```ts
 * resolveRetentionOptions({ retentionMs: 3_600_000 }); // { maxTasks: 100000, retentionMs: 3600000, pruneIntervalMs: 60000 }
 * resolveRetentionOptions({ maxTasks: -1 }); // TypeError: Expected `maxTasks` to be an integer from 0 and up, got `-1`
 * ```
 */
export function resolveRetentionOptions(options: RetentionOptions): ResolvedRetentionOptions {
  return {
    maxTasks: integerOption('maxTasks', options.maxTasks, 0, 100_000),
    retentionMs: integerOption('retentionMs', options.retentionMs, 1, SEVEN_DAYS_MS),
    pruneIntervalMs: integerOption('pruneIntervalMs', options.pruneIntervalMs, 1, 60_000, MAX_TIMER_MS),
  };
}
