import { FcAsyncError } from '@fc-async/core';

/** A plain object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A malformed `s.yaml`: the message names the file and the problem. */
export function configError(file: string, problem: string): FcAsyncError {
  return new FcAsyncError('InvalidConfig', `${file}: ${problem}`, { statusCode: 400 });
}

/** The origins of the values of the s.yaml being read (`VarContext.origins`), while it is checked. */
let valueOrigins: ReadonlyMap<unknown, string> | undefined;

/**
 * Runs `check` (synchronous: nothing else runs meanwhile) with `origins` in force for {@link shown}.
 *
 * @example
 * ```ts
 * withValueOrigins(ctx.origins, () => checkFunction(file, dir, where, raw));
 * ```
 */
export function withValueOrigins<T>(origins: ReadonlyMap<unknown, string> | undefined, check: () => T): T {
  const outer = valueOrigins;
  valueOrigins = origins;
  try {
    return check();
  } finally {
    valueOrigins = outer;
  }
}

/**
 * A value of the s.yaml for an error message: quoted when the file has it as written, named by its
 * expression when one produced it (an env var, `.env`, `file()`, `json()`, `vars`), as that value
 * may be a secret: `"60s"`, or `the value of ${env(DBPASS)}`. A literal equal to a value an
 * expression produced is named by that expression too: never quoted is what matters.
 *
 * @example
 * ```ts
 * `must be an integer from 1 to 86400 (seconds), got ${shown(value)}`;
 * ```
 */
export function shown(value: unknown, literal: (value: unknown) => unknown = quoted): string {
  const origin = valueOrigins && originIn(value, valueOrigins);
  return origin === undefined ? String(literal(value)) : origin;
}

/**
 * {@link shown} for a number field: a value an expression gave as text, named by that expression,
 * says it is text (`${env('TIMEOUT', '60')}` reads 60, but its quoted default is text), which a
 * quoted literal (`"60"`) shows itself.
 */
export function shownNumber(value: unknown): string {
  const text = shown(value);
  return typeof value === 'string' && text.startsWith('the value of ') ? `${text}, which is text` : text;
}

/** The most of a value's JSON an error message quotes: a PutAsyncInvokeConfig body may be 1 MB. */
const MAX_QUOTED = 128;

/**
 * A value's JSON, cut after {@link MAX_QUOTED} characters (`…` marks the cut), so that a message
 * never sends a megabyte back; a value nested too deep for `JSON.stringify` (a body of the FC API
 * can be) is named so, rather than failing the request with a `RangeError`.
 */
function quoted(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return 'a value nested too deep to show';
  }
  if (text === undefined) return 'undefined';
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
}

/** Where `value`, or a value in it (a list typed in s.yaml holding `${env(X)}`), came from. */
function originIn(value: unknown, origins: ReadonlyMap<unknown, string>): string | undefined {
  const own = origins.get(value);
  if (own !== undefined) return `the value of ${own}`;
  const seen = new Set<unknown>();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    for (const item of Object.values(v)) {
      const origin = origins.get(item);
      if (origin !== undefined) return `a ${Array.isArray(value) ? 'list' : 'mapping'} holding the value of ${origin}`;
      stack.push(item);
    }
  }
  return undefined;
}

/** A bad command-line flag or option: a `TypeError` with the p-queue style message. */
export function optionError(name: string, expected: string, got: unknown): TypeError {
  return new TypeError(`Expected \`${name}\` to be ${expected}, got \`${String(got)}\``);
}

/**
 * What stopped the start, with its cause when it has one: `Redis did not answer within 10000 ms`
 * alone names neither the address nor why (the cause's `connect ECONNREFUSED 127.0.0.1:6379` does).
 */
export function failure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A module that failed to load: the message already tells its cause, in the user's terms (a file, not the URL loaded).
  if ((error as { code?: unknown }).code === 'EntryLoadFailed') return error.message;
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  // One line: a cause of several (a compiler's) is already told in the message, in its own words.
  return cause && !cause.includes('\n') && !error.message.includes(cause)
    ? `${error.message} (${cause})`
    : error.message;
}
