import { badRequest } from './errors.js';
import type { FcRequest } from './request.js';

/**
 * An FC 3.0 event's headers under lower-cased names, as Node's `req.headers`: numbers, booleans
 * and arrays of them become strings (see {@link headerText}; other values are a 400), `null` and
 * `undefined` ones are left out, and names that differ only in case are one header whose values
 * are joined with commas.
 */
export function copyEventHeaders(source: Record<string, unknown> | undefined): FcRequest['headers'] {
  const headers: FcRequest['headers'] = {};
  for (const key in source) {
    const value = source[key];
    if (value === undefined || value === null) continue;
    // A name no other known key lowers to cannot have been set by an earlier key of this event,
    // so there is no earlier value to look up (a look-up that costs as much as the store).
    const name = uniqueNames.get(key);
    if (name === undefined) return copyJoining(source);
    headers[name] = typeof value === 'string' ? value : headerText(key, value);
  }
  return headers;
}

/** The copy for events with a key not seen before, or with names that differ only in case. */
function copyJoining(source: Record<string, unknown> | undefined): FcRequest['headers'] {
  const headers: Record<string, string> = {};
  for (const key in source) {
    const value = source[key];
    if (value === undefined || value === null) continue;
    putJoined(headers, lowerCaseName(key), typeof value === 'string' ? value : headerText(key, value));
  }
  return headers;
}

/**
 * Sets `name` to `value`, after a comma and the value it already holds, if any: its own value
 * only (`constructor` is a name like any other, not Object's), and `__proto__` as a plain key.
 */
export function putJoined(target: Record<string, string>, name: string, value: string): void {
  const joined = Object.hasOwn(target, name) ? `${target[name]},${value}` : value;
  if (name === '__proto__') {
    Object.defineProperty(target, name, { value: joined, enumerable: true, writable: true, configurable: true });
  } else {
    target[name] = joined;
  }
}

/**
 * A header value that is not a string, as text: a number or boolean as `String()` writes it, an
 * array of those joined with `separator`. Anything else (an object, whose `String()` is
 * `[object Object]` or even throws) is refused with a 400 `InvalidEvent` naming the header.
 *
 * @example
 * ```ts
 * headerText('X-Count', 3); // '3'
 * headerText('X-Tags', ['a', 'b']); // 'a,b'
 * ```
 */
export function headerText(name: string, value: unknown, separator = ','): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value) && value.every(isScalar)) return value.join(separator);
  const got = Array.isArray(value)
    ? 'an array of other values'
    : typeof value === 'object'
      ? 'an object'
      : `a ${typeof value}`;
  throw badRequest('InvalidEvent', `The header ${JSON.stringify(name.slice(0, 64))} must be a string, got ${got}`);
}

function isScalar(value: unknown): boolean {
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean' || value === null || value === undefined;
}

/**
 * Lower-cased header names, memoised: FC sends the same few canonical names (`Content-Type`) on
 * every request, and looking up a freshly lower-cased string as a property key costs more than
 * the lower-casing. Bounded, so odd names cannot grow it.
 */
const lowerCaseNames = new Map<string, string>();
/** The memoised keys whose lower-cased name no other memoised key has (`Content-Type`, and no `content-type`). */
const uniqueNames = new Map<string, string>();
/** The key that first gave each memoised name. */
const firstKeyOf = new Map<string, string>();

function lowerCaseName(key: string): string {
  let name = lowerCaseNames.get(key);
  if (name === undefined) {
    name = key.toLowerCase();
    if (lowerCaseNames.size < 1024) {
      lowerCaseNames.set(key, name);
      const other = firstKeyOf.get(name);
      if (other === undefined) {
        firstKeyOf.set(name, key);
        // `__proto__` cannot be stored by assignment: its events take the joining copy.
        if (name !== '__proto__') uniqueNames.set(key, name);
      } else {
        uniqueNames.delete(other);
      }
    }
  }
  return name;
}
