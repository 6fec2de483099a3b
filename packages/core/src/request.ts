import { badRequest } from './errors.js';

/**
 * The request as fc-async carries it between the FC codecs, the bridge and the async engine:
 * one shape whatever the entry point (FC 3.0 event, FC 2.0 request, custom-runtime HTTP).
 *
 * @example
 * ```ts
 * const request: FcRequest = { method: 'POST', url: '/jobs?x=1', headers: { 'content-type': 'application/json' },
 *   body: Buffer.from('{"a":1}') };
 * ```
 */
export interface FcRequest {
  method: string;
  /** Encoded path plus query string, as Node's `req.url`. */
  url: string;
  /** Lower-cased names, as Node's `req.headers`. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** TCP peer as FC saw it (`requestContext.http.sourceIp` / `clientIP`). */
  remoteAddress?: string | undefined;
  /** The request id FC put in the event, when it did. */
  requestId?: string | undefined;
  /** When FC received the request (epoch ms), when known. */
  receivedAt?: number | undefined;
}

/**
 * Sets `content-length` to the body's byte length whenever there is a body (or the caller sent
 * a length), and drops `transfer-encoding`: the body is whole here, and body parsers need the
 * exact byte count, also for non-ASCII text.
 *
 * @example
 * ```ts
 * const headers: FcRequest['headers'] = { 'transfer-encoding': 'chunked' };
 * fixBodyHeaders(headers, Buffer.from('hello'));
 * headers['content-length']; // '5', and no transfer-encoding
 * ```
 */
export function fixBodyHeaders(headers: FcRequest['headers'], body: Buffer): void {
  if (body.length > 0 || headers['content-length'] !== undefined) {
    headers['content-length'] = String(body.length);
  }
  if (headers['transfer-encoding'] !== undefined) delete headers['transfer-encoding'];
}

/**
 * Percent-encodes what may not stand in a URL path, keeping `%XX` escapes that are already there.
 * Never throws: a character outside the BMP is one match (`u`), and a lone surrogate, which has
 * no UTF-8 form, becomes U+FFFD as a UTF-8 decoder makes of bytes it cannot read.
 *
 * @example
 * ```ts
 * encodePath('/files/a b.txt'); // '/files/a%20b.txt'
 * ```
 */
export function encodePath(path: string): string {
  // Fast path: nothing to encode.
  if (/^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/.test(path)) return path;
  return path.replace(/%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu, (c) =>
    c === '%' ? '%25' : LONE_SURROGATE.test(c) ? '%EF%BF%BD' : encodeURIComponent(c),
  );
}

/**
 * A decoded path (FC 2.0's `req.path`, FC 3.0's `requestContext.http.path`) encoded whole: a `%`
 * in it is a character the client sent encoded, not an escape. Kept as {@link encodePath} keeps
 * it, `/files/..%2F..` (sent as `..%252F..`) would reach the app decoded twice, as `../..`.
 */
export function encodeDecodedPath(path: string): string {
  if (/^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/.test(path)) return path;
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/gu, (c) =>
    LONE_SURROGATE.test(c) ? '%EF%BF%BD' : encodeURIComponent(c),
  );
}

/** A surrogate that is not half of a pair (`u`: a pair is one code point and does not match). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Builds `?a=1&b=x%20y` from a map of decoded values. Values that are arrays (FC 2.0) become
 * repeated parameters; comma-joined strings (FC 3.0) stay one value: see docs/adapters.md.
 *
 * @example
 * ```ts
 * buildQuery({ page: '2', tag: ['a', 'b'] }); // '?page=2&tag=a&tag=b'
 * ```
 */
export function buildQuery(params: Record<string, string | string[] | undefined> | undefined): string {
  if (!params) return '';
  let out = '';
  for (const key in params) {
    const value: unknown = params[key];
    if (value === undefined || value === null) continue;
    const k = encodeQueryPart(key);
    if (Array.isArray(value)) {
      for (const v of value) {
        if (v !== undefined && v !== null) out += `${out ? '&' : '?'}${k}=${encodeQueryPart(queryText(key, v))}`;
      }
    } else {
      out += `${out ? '&' : '?'}${k}=${encodeQueryPart(queryText(key, value))}`;
    }
  }
  return out;
}

/** A query value as text: a string, number or boolean; an object (whose `String()` may even throw) is a 400. */
function queryText(key: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  const got = Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
  throw badRequest(
    'InvalidEvent',
    `The query parameter ${JSON.stringify(key.slice(0, 64))} must be a string, got ${got}`,
  );
}

/** What `encodeURIComponent` leaves as it is, plus the comma (most keys and values), by char code. */
const QUERY_SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.!~*'(),-")
  QUERY_SAFE[c.charCodeAt(0)] = 1;

function encodeQueryPart(s: string): string {
  let safe = true;
  for (let i = 0; i < s.length && safe; i++) safe = QUERY_SAFE[s.charCodeAt(i)] === 1;
  if (safe) return s;
  let e: string;
  try {
    e = encodeURIComponent(s);
  } catch {
    // A lone surrogate has no UTF-8 form: U+FFFD, as a UTF-8 decoder reads bytes it cannot.
    e = encodeURIComponent(s.replace(/\p{Cs}/gu, '\ufffd'));
  }
  return e.includes('%2C') ? e.replace(/%2C/g, ',') : e;
}
