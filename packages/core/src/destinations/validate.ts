/** Option checks shared by core's functions, with p-queue style messages. */

/**
 * The largest delay a Node timer keeps (2^31 − 1 ms, about 24.8 days): past it, `setTimeout` and
 * `AbortSignal.timeout` fire at once. A timer option above it is refused.
 *
 * @example
 * ```ts
 * declare const value: unknown;
 * integerOption('pruneIntervalMs', value, 1, 60_000, MAX_TIMER_MS);
 * ```
 */
export const MAX_TIMER_MS = 2_147_483_647;

export const DEFAULT_RETRIES = 3;

/** An integer from 0 up to `max` (retry counts). */
export function retriesOption(name: string, value: unknown, fallback = DEFAULT_RETRIES, max = 100): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(
      `Expected \`${name}\` to be an integer from 0 to ${max}, got \`${String(value)}\` (${typeof value})`,
    );
  }
  return value;
}

/** A finite number above 0 (timeouts, delays). */
export function positiveOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`Expected \`${name}\` to be a positive number, got \`${String(value)}\``);
  }
  return value;
}

/** A timeout in milliseconds: above 0, and no more than a timer can wait ({@link MAX_TIMER_MS}). */
export function timeoutOption(name: string, value: unknown, fallback: number): number {
  const ms = positiveOption(name, value, fallback);
  if (ms > MAX_TIMER_MS) {
    throw new TypeError(`Expected \`${name}\` to be a number of milliseconds up to ${MAX_TIMER_MS}, got \`${ms}\``);
  }
  return ms;
}

/** A finite number from 0 up. */
export function nonNegativeOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`Expected \`${name}\` to be a number from 0 and up, got \`${String(value)}\``);
  }
  return value;
}

/** A non-empty string. */
export function stringOption(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string, got \`${describe(value)}\``);
  }
  return value;
}

/**
 * Options must be a plain object (or undefined), with none but the `known` keys: a misspelt one
 * is refused, naming `owner` (e.g. `httpDestination()`), rather than silently ignored.
 */
export function objectOption<T extends object>(
  name: string,
  value: T | undefined,
  owner: string,
  known: readonly (keyof T & string)[],
): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got \`${describe(value)}\``);
  }
  for (const key of Object.keys(value)) {
    if (!(known as readonly string[]).includes(key)) throw new TypeError(`Unknown ${owner} option \`${key}\``);
  }
  return value;
}

/** A short description of a value for error messages; never prints secrets passed as objects. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 80 ? `${value.slice(0, 77)}...` : value;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'array' : 'object';
}
