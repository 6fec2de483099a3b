import { types } from 'node:util';
import { putJoined } from './event-headers.js';
import type { FcHttpEvent } from './fc-types.js';
import { kindOf } from './handler-options.js';
import { newRequestId } from './ids.js';

/**
 * What {@link fcHttpEvent} makes an FC 3.0 HTTP event of; every field may be left out.
 *
 * @example
 * ```ts
 * const init: FcHttpEventInit = { method: 'POST', url: '/jobs', body: { video: 'a.mov' }, headers: { 'x-fc-invocation-type': 'Async' } };
 * const event = fcHttpEvent(init);
 * ```
 */
export interface FcHttpEventInit {
  /** @default 'GET' */
  method?: string | undefined;
  /**
   * The path plus query string; an absolute URL (`http://api.example.com/x?y=1`) gives its path
   * and query, and its host as `Host` unless `headers` name one. Encoded as a client (fetch, the
   * WHATWG URL) sends it, and so as FC's `rawPath` is: a space, a non-ASCII character and the
   * like are percent-encoded, an escape already there (`%C3%A9`) is kept as it is, and a
   * fragment (`#top`) is dropped. @default '/'
   */
  url?: string | undefined;
  /**
   * Header names in any case (of names that differ only in case, the last one given wins); values
   * of a repeated header as an array. @default {}
   */
  headers?: Record<string, string | readonly string[] | undefined> | undefined;
  /**
   * A string is UTF-8 text (`Content-Type: text/plain; charset=utf-8` unless `headers` name a
   * type, as fetch sends one); bytes (a `Buffer`, any typed array, a `DataView`, an `ArrayBuffer` or
   * a `SharedArrayBuffer`) are sent as they are; `URLSearchParams` as a form
   * (`application/x-www-form-urlencoded` unless `headers` name a type); any other object as JSON,
   * with `Content-Type: application/json` unless `headers` name a type. A `Blob` is refused (read
   * it first: `await blob.arrayBuffer()`), and so are a `FormData` (encode it first), a stream
   * (read it first), a promise (await it first) and a `Map` or `Set` without `toJSON` (JSON would
   * send `{}`). @default no body
   */
  body?: string | Uint8Array | ArrayBufferView | ArrayBuffer | URLSearchParams | object | undefined;
  /** The TCP peer. @default '127.0.0.1' */
  sourceIp?: string | undefined;
  /** @default a new id in FC's format */
  requestId?: string | undefined;
  /** @default '' */
  accountId?: string | undefined;
  /**
   * When FC received the request, in whole epoch milliseconds from 0 to 4294967295999 (the
   * second goes into the request id as 8 hex digits); a number, not FC's string form. @default now
   */
  timeEpoch?: number | undefined;
}

/** Body types FC 3.0 passes as plain text; everything else is base64 (fc-contract section 3). */
const TEXT_TYPES = new Set([
  'application/json',
  'application/ld+json',
  'application/xhtml+xml',
  'application/xml',
  'application/atom+xml',
  'application/javascript',
]);

const textBodyTypes = new Map<string, boolean>();
/** The last type asked about: a client sends the same one again, and comparing beats hashing a new string. */
let lastType = '';
let lastText = false;

/**
 * Whether FC 3.0 hands a request body of this `Content-Type` to the function as text (`text/*`
 * and the JSON, XML and JavaScript types) rather than base64.
 *
 * @example
 * ```ts
 * isFcTextBody('application/json; charset=utf-8'); // true
 * isFcTextBody('image/png'); // false
 * ```
 */
export function isFcTextBody(contentType: string | undefined): boolean {
  if (!contentType) return false;
  if (contentType === lastType) return lastText;
  let text = textBodyTypes.get(contentType);
  if (text === undefined) {
    const mime = (contentType.split(';')[0] as string).trim().toLowerCase();
    text = mime.startsWith('text/') || TEXT_TYPES.has(mime);
    if (textBodyTypes.size < 256) textBodyTypes.set(contentType, text);
  }
  lastType = contentType;
  lastText = text;
  return text;
}

const canonicalNames = new Map<string, string>();

/** `content-type` → `Content-Type`, as FC hands header names to the function. */
function canonicalHeaderName(name: string): string {
  let out = canonicalNames.get(name);
  if (out === undefined) {
    out = name
      .split('-')
      .map((p) => (p ? (p[0] as string).toUpperCase() + p.slice(1).toLowerCase() : p))
      .join('-');
    if (canonicalNames.size < 1024) canonicalNames.set(name, out);
  }
  return out;
}

function decodeSafely(text: string, plus: boolean): string {
  if (!text.includes('%') && !(plus && text.includes('+'))) return text;
  const t = plus ? text.replace(/\+/g, ' ') : text;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

/**
 * A query string (without `?`) as FC 3.0's `queryParameters`: names and values decoded, the
 * values of a repeated name joined with commas.
 *
 * @example
 * ```ts
 * fcQueryParameters('tag=a&tag=b&q=hello+world'); // { tag: 'a,b', q: 'hello world' }
 * ```
 */
export function fcQueryParameters(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!query) return out;
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decodeSafely(eq < 0 ? part : part.slice(0, eq), true);
    const value = eq < 0 ? '' : decodeSafely(part.slice(eq + 1), true);
    putJoined(out, key, value);
  }
  return out;
}

// NaN matches no second: the first call formats, whatever its time (0 included).
let lastSecond = Number.NaN;
let lastTime = '';
/** `requestContext.time` (ISO 8601 to the second), formatted once per second. */
function isoSecond(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastTime = new Date(second * 1000).toISOString().replace('.000Z', 'Z');
  }
  return lastTime;
}

const INIT_KEYS = new Set(['method', 'url', 'headers', 'body', 'sourceIp', 'requestId', 'accountId', 'timeEpoch']);
const STRING_KEYS = ['method', 'url', 'sourceIp', 'requestId', 'accountId'] as const;

/** Refuses what {@link fcHttpEvent} would turn into a broken event or a crash deep inside it. */
function checkInit(init: FcHttpEventInit): void {
  if (typeof init !== 'object' || init === null || Array.isArray(init)) {
    throw new TypeError(`Expected \`init\` to be an object, got \`${kindOf(init)}\``);
  }
  for (const key in init) {
    if (!INIT_KEYS.has(key)) throw new TypeError(`Unknown fcHttpEvent() option \`${key}\``);
  }
  for (const key of STRING_KEYS) {
    const value = init[key];
    if (value !== undefined && typeof value !== 'string') {
      throw new TypeError(`Expected \`${key}\` to be a string, got \`${kindOf(value)}\``);
    }
  }
  const { headers, body, timeEpoch } = init;
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Array.isArray(headers))) {
    throw new TypeError(`Expected \`headers\` to be an object of header values, got \`${kindOf(headers)}\``);
  }
  if (body !== undefined && typeof body !== 'string' && (typeof body !== 'object' || body === null)) {
    throw new TypeError(
      `Expected \`body\` to be a string, bytes or an object to send as JSON, got \`${kindOf(body)}\``,
    );
  }
  if (timeEpoch !== undefined) checkTimeEpoch(timeEpoch);
}

/** The last millisecond whose second fits the request id's 8 hex digits (2106-02-07). */
const MAX_TIME_EPOCH = 2 ** 32 * 1000 - 1;

/** A time FC could have sent: whole milliseconds whose request id is in FC's format. */
function checkTimeEpoch(timeEpoch: unknown): void {
  const expected = `Expected \`timeEpoch\` to be epoch milliseconds (a whole number from 0 to ${MAX_TIME_EPOCH})`;
  if (typeof timeEpoch === 'string' && timeEpoch.trim() !== '' && Number.isFinite(Number(timeEpoch))) {
    // FC's event carries it as a string: a test copying one would pass it as it is.
    throw new TypeError(`${expected}, got the string '${timeEpoch}': pass a number (\`Number(timeEpoch)\`)`);
  }
  if (typeof timeEpoch !== 'number') throw new TypeError(`${expected}, got \`${kindOf(timeEpoch)}\``);
  if (!Number.isInteger(timeEpoch) || timeEpoch < 0 || timeEpoch > MAX_TIME_EPOCH) {
    throw new TypeError(`${expected}, got \`${String(timeEpoch)}\``);
  }
}

/** The body's bytes, and the content type its kind implies (JSON, a form), if any. */
function bodyOf(body: FcHttpEventInit['body']): { bytes: Buffer; type?: string } {
  if (body === undefined) return { bytes: Buffer.alloc(0) };
  // As fetch sends a string: text, unless `headers` name a type.
  if (typeof body === 'string') return { bytes: Buffer.from(body, 'utf8'), type: 'text/plain; charset=utf-8' };
  if (ArrayBuffer.isView(body)) return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  // Any realm's ArrayBuffer, and a SharedArrayBuffer (`instanceof` would miss both).
  if (types.isAnyArrayBuffer(body)) return { bytes: Buffer.from(new Uint8Array(body)) };
  if (body instanceof URLSearchParams) {
    return { bytes: Buffer.from(body.toString(), 'utf8'), type: 'application/x-www-form-urlencoded' };
  }
  if (typeof Blob === 'function' && body instanceof Blob) {
    throw new TypeError(
      'Expected `body` to be a string, bytes or an object to send as JSON, got a Blob: read it first (`await blob.arrayBuffer()`)',
    );
  }
  const unread = unreadBody(body);
  if (unread)
    throw new TypeError(`Expected \`body\` to be a string, bytes or an object to send as JSON, got ${unread}`);
  if ((body instanceof Map || body instanceof Set) && typeof (body as { toJSON?: unknown }).toJSON !== 'function') {
    // JSON.stringify would send `{}`: the test would run with an empty body without a word.
    throw new TypeError(
      `Expected \`body\` to be a string, bytes or an object to send as JSON, got a ${body.constructor.name} (JSON has no form for it: pass an object or an array)`,
    );
  }
  return { bytes: Buffer.from(JSON.stringify(body), 'utf8'), type: 'application/json' };
}

/**
 * What to say of a body that is not its bytes yet (JSON would send `{}` or a stream's inner state,
 * as `application/json`): a form to encode, a stream to read, a promise to await.
 */
function unreadBody(body: object): string | undefined {
  if (typeof FormData === 'function' && body instanceof FormData) {
    return "a FormData: encode it first (`const r = new Response(form)`; then `body: Buffer.from(await r.arrayBuffer())` and `headers: { 'content-type': r.headers.get('content-type') ?? undefined }`)";
  }
  const b = body as { getReader?: unknown; pipe?: unknown; then?: unknown };
  if (typeof b.getReader === 'function' || typeof b.pipe === 'function' || Symbol.asyncIterator in body) {
    return 'a stream: read it first (a Node stream: `Buffer.concat(await readable.toArray())`; a web stream: `Buffer.from(await new Response(stream).arrayBuffer())`)';
  }
  if (typeof b.then === 'function') return 'a promise: await it first';
  return undefined;
}

/** `scheme://host[:port]` then the rest: an absolute URL's authority and its path and query. */
const ABSOLUTE_URL = /^[a-z][a-z\d+.-]*:\/\/([^/?#]*)(.*)$/is;
/** What the WHATWG URL percent-encodes in an http(s) URL's path: controls, space, non-ASCII, `"<>\`{}`. */
const PATH_ENCODED = /[^\x21-\x7e]|["<>`{}]/gu;
/** And in its query: controls, space, non-ASCII, `"'<>`. */
const QUERY_ENCODED = /[^\x21-\x7e]|["'<>]/gu;
const HEX = Array.from({ length: 256 }, (_, b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`);

/**
 * `text` with what a client percent-encodes so (UTF-8 bytes, a lone surrogate as U+FFFD, as the
 * WHATWG URL does); `%` is left alone, so an escape already there is not encoded twice.
 */
function percentEncode(text: string, encoded: RegExp): string {
  return text.replace(encoded, (c) => {
    let out = '';
    for (const byte of Buffer.from(c, 'utf8')) out += HEX[byte];
    return out;
  });
}

/**
 * The path and query a client sends for `url`: an absolute URL's authority taken off (its host
 * into `headers.Host` unless set), the fragment dropped, the rest percent-encoded as a client does.
 * Dot segments stay as written, so a test can send the `/a/../b` a raw client would.
 */
function pathAndQuery(url: string, headers: Record<string, string>): { rawPath: string; query: string } {
  const hash = url.indexOf('#');
  let target = hash < 0 ? url : url.slice(0, hash);
  const absolute = ABSOLUTE_URL.exec(target);
  if (absolute) {
    headers.Host ??= (absolute[1] as string).replace(/^.*@/, '');
    const rest = absolute[2] as string;
    target = rest.startsWith('/') ? rest : `/${rest}`;
  }
  const q = target.indexOf('?');
  return {
    rawPath: percentEncode(q < 0 ? target : target.slice(0, q), PATH_ENCODED),
    query: q < 0 ? '' : percentEncode(target.slice(q + 1), QUERY_ENCODED),
  };
}

/**
 * An FC 3.0 HTTP event as FC hands it to a built-in runtime handler: header names canonicalised
 * (`Content-Type`) and repeated values joined with commas, the URL encoded as a client sends it
 * (its fragment dropped) and its path and query split and decoded, the body as text for FC's
 * text types and base64 otherwise, and the request context.
 * For tests and scripts that call a handler without FC; FC's common `x-fc-*` headers are not
 * added (pass them in `headers` when the test needs them).
 *
 * @example
 * ```ts
 * const handler = createFcHandler((req, res) => res.end('ok'));
 * const result = await handler(
 *   fcHttpEvent({ method: 'POST', url: '/jobs?priority=high', body: { video: 'a.mov' }, headers: { 'x-fc-invocation-type': 'Async' } }),
 *   { requestId: 'req-1' },
 * );
 * ```
 */
export function fcHttpEvent(init: FcHttpEventInit = {}): FcHttpEvent {
  checkInit(init);
  const { bytes, type } = bodyOf(init.body);
  const headers: Record<string, string> = {};
  for (const name in init.headers) {
    const value = init.headers[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
      throw new TypeError(
        `Expected \`headers.${name}\` to be a string or an array of strings, got \`${kindOf(value)}\``,
      );
    }
    // Names that differ only in case: the last one given wins (a test overriding a default header).
    headers[canonicalHeaderName(name)] = typeof value === 'string' ? value : value.join(',');
  }
  if (type !== undefined && headers['Content-Type'] === undefined) headers['Content-Type'] = type;
  const { rawPath, query } = pathAndQuery(init.url ?? '/', headers);
  const text = bytes.length === 0 || isFcTextBody(headers['Content-Type']);
  const host = headers.Host ?? 'localhost';
  const now = init.timeEpoch ?? Date.now();
  return {
    version: 'v1',
    rawPath,
    body: text ? bytes.toString('utf8') : bytes.toString('base64'),
    isBase64Encoded: !text,
    headers,
    queryParameters: fcQueryParameters(query),
    requestContext: {
      accountId: init.accountId ?? '',
      domainName: host,
      domainPrefix: host.split('.')[0] as string,
      http: {
        method: init.method ?? 'GET',
        path: decodeSafely(rawPath, false),
        protocol: 'HTTP/1.1',
        sourceIp: init.sourceIp ?? '127.0.0.1',
        userAgent: headers['User-Agent'] ?? '',
      },
      requestId: init.requestId ?? newRequestId(now),
      time: isoSecond(now),
      timeEpoch: String(now),
    },
  };
}
