import type { FcRequest } from './request.js';

/**
 * An FC 3.0 event's headers under lower-cased names, as Node's `req.headers`: values that are not
 * strings become strings, `null` and `undefined` ones are left out, and names that differ only in
 * case are one header whose values are joined with commas.
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
    headers[name] = typeof value === 'string' ? value : String(value);
  }
  return headers;
}

/** The copy for events with a key not seen before, or with names that differ only in case. */
function copyJoining(source: Record<string, unknown> | undefined): FcRequest['headers'] {
  const headers: FcRequest['headers'] = {};
  for (const key in source) {
    const value = source[key];
    if (value === undefined || value === null) continue;
    const name = lowerCaseName(key);
    const existing = headers[name];
    headers[name] =
      existing === undefined ? (typeof value === 'string' ? value : String(value)) : `${existing},${value}`;
  }
  return headers;
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
        uniqueNames.set(key, name);
      } else {
        uniqueNames.delete(other);
      }
    }
  }
  return name;
}
