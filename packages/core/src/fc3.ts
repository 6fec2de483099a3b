import { isUtf8 } from 'node:buffer';
import { badRequest } from './errors.js';
import { copyEventHeaders } from './event-headers.js';
import type { FcHttpEvent, FcHttpResult } from './fc-types.js';
import { plainConstructor } from './plain-object.js';
import { buildQuery, encodeDecodedPath, type FcRequest, fixBodyHeaders } from './request.js';
import { type BodyKind, isNoBodyResponse, type ResponseBody } from './response.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parses what an FC 3.0 runtime passes as `event` (a Buffer or string holding JSON, or the
 * parsed object) into an {@link FcRequest}. Pure; throws an `FcAsyncError` with status 400 and
 * code `InvalidEvent` or `InvalidBody` for a malformed event.
 *
 * @example
 * ```ts
 * declare const event: FcHttpEvent;
 * const request = parseFcEvent(Buffer.from(JSON.stringify(event)));
 * request.url; // '/jobs?page=2'
 * ```
 */
export function parseFcEvent(event: unknown): FcRequest {
  const e = toObject(event);
  const context = e.requestContext;
  const http = context?.http;
  if (!http || typeof http !== 'object') {
    throw badRequest('InvalidEvent', 'The event has no requestContext.http: is this an HTTP trigger event?');
  }
  const method = normalizeMethod(http.method);
  let path = e.rawPath;
  if (typeof path !== 'string') {
    if (typeof http.path !== 'string') throw badRequest('InvalidEvent', 'The event has no rawPath');
    path = encodeDecodedPath(http.path);
  }
  if (path.charCodeAt(0) !== 47 /* / */) path = `/${path}`;
  if (e.headers !== undefined && (typeof e.headers !== 'object' || e.headers === null || Array.isArray(e.headers))) {
    throw badRequest('InvalidEvent', 'The event headers must be an object');
  }
  if (e.queryParameters != null && (typeof e.queryParameters !== 'object' || Array.isArray(e.queryParameters))) {
    throw badRequest('InvalidEvent', 'The event queryParameters must be an object');
  }

  const headers = copyEventHeaders(e.headers);
  if (headers['user-agent'] === undefined && typeof http.userAgent === 'string' && http.userAgent) {
    headers['user-agent'] = http.userAgent;
  }
  if (headers.host === undefined && typeof context?.domainName === 'string') {
    headers.host = context.domainName;
  }

  const body = decodeBody(e.body, e.isBase64Encoded);
  fixBodyHeaders(headers, body);
  return new ParsedRequest(
    method,
    path + buildQuery(e.queryParameters),
    headers,
    body,
    typeof http.sourceIp === 'string' ? http.sourceIp : undefined,
    typeof context?.requestId === 'string' ? context.requestId : undefined,
    epochMs(context?.timeEpoch),
  );
}

/**
 * Builds the {@link FcRequest} of an event: a plain object (`Object.prototype`, the same own
 * fields in the same order as a literal), made with `new` rather than as a literal. V8 ties each
 * object literal to an allocation site that it may decide to pretenure, once a GC finds most of
 * the site's objects alive: from then on every request object is made in the old generation,
 * which fills it and makes the process's GC several times dearer (the raw GET bench row's slow
 * mode, 2.5 to 3 times the time of its fast one). Objects made with `new` have no such site.
 */
const ParsedRequest = plainConstructor(function ParsedRequest(
  this: FcRequest,
  method: string,
  url: string,
  headers: FcRequest['headers'],
  body: Buffer,
  remoteAddress: string | undefined,
  requestId: string | undefined,
  receivedAt: number | undefined,
) {
  this.method = method;
  this.url = url;
  this.headers = headers;
  this.body = body;
  this.remoteAddress = remoteAddress;
  this.requestId = requestId;
  this.receivedAt = receivedAt;
});

/**
 * `timeEpoch` as a positive number of milliseconds, or `undefined`. Digit strings (what FC
 * sends) are read digit by digit, which costs a fraction of `Number()` on a 13-digit string.
 */
function epochMs(value: unknown): number | undefined {
  let n = 0;
  if (typeof value === 'string' && value.length > 0 && value.length <= 15) {
    for (let i = 0; i < value.length && n >= 0; i++) {
      const digit = value.charCodeAt(i) - 48;
      n = digit >= 0 && digit <= 9 ? n * 10 + digit : -1;
    }
  } else {
    n = -1;
  }
  // Not Number() of an object: its `valueOf` or `toString` may be anything, even a throwing one.
  if (n < 0) n = typeof value === 'number' || typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

const COMMON_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/** An HTTP method token (RFC 9110 section 5.6.2): `M-SEARCH` is one, `GE T` is not. */
export const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

function normalizeMethod(method: unknown): string {
  if (typeof method === 'string' && COMMON_METHODS.has(method)) return method;
  if (typeof method !== 'string' || !METHOD_TOKEN.test(method)) {
    throw badRequest('InvalidEvent', 'The event has no valid requestContext.http.method');
  }
  return method.toUpperCase();
}

function toObject(event: unknown): FcHttpEvent {
  let value = event;
  if (value instanceof Uint8Array) {
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    value = bytes.toString('utf8');
  }
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      throw badRequest('InvalidEvent', 'The event is not valid JSON', cause);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('InvalidEvent', 'The event must be a JSON object');
  }
  return value as FcHttpEvent;
}

function decodeBody(body: unknown, isBase64Encoded: unknown): Buffer {
  if (body === undefined || body === null || body === '') return EMPTY;
  if (typeof body !== 'string') throw badRequest('InvalidEvent', 'The event body must be a string');
  if (isBase64Encoded === true) {
    if (body.length % 4 !== 0 || !BASE64.test(body)) {
      throw badRequest('InvalidBody', 'The event body is marked isBase64Encoded but is not valid base64');
    }
    return Buffer.from(body, 'base64');
  }
  return Buffer.from(body, 'utf8');
}

const EMPTY = Buffer.alloc(0);

/**
 * Builds what an FC 3.0 handler returns from a collected response.
 *
 * Header values that are arrays are joined with `, `, except `set-cookie`: each cookie gets a
 * header name of its own that differs only in letter case (`set-cookie`, `Set-cookie`, ...),
 * because FC's `headers` map holds one value per name and HTTP forbids folding cookies. A `HEAD`
 * answer has no body, and keeps the length of the one the app wrote in `content-length`.
 *
 * @example
 * ```ts
 * const isText = createBodyClassifier();
 * const result = toFcHttpResult({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' }, 'GET', isText);
 * ```
 */
export function toFcHttpResult(
  response: { statusCode: number; headers: Record<string, unknown>; body: ResponseBody },
  method: string,
  classify: (headers: Record<string, unknown>) => BodyKind,
): FcHttpResult {
  const headers = flattenHeaders(response.headers);
  if (isNoBodyResponse(method, response.statusCode)) {
    if (method === 'HEAD') keepHeadLength(headers, response);
    return new HttpResult(response.statusCode, headers, false, '');
  }
  const body = response.body;
  // A text type whose bytes are not UTF-8 (a mislabelled charset) goes as base64: as text, each
  // invalid byte would become U+FFFD and the body be changed on its way.
  if (classify(response.headers) === 'text' && (typeof body === 'string' || isUtf8(body))) {
    return new HttpResult(response.statusCode, headers, false, typeof body === 'string' ? body : body.toString('utf8'));
  }
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return new HttpResult(
    response.statusCode,
    headers,
    bytes.length > 0,
    bytes.length > 0 ? bytes.toString('base64') : '',
  );
}

/**
 * A HEAD answer's `content-length`: the body the app wrote, which the answer drops, when the app set
 * no length of its own (RFC 9110 9.3.2: a HEAD's head is its GET's). FC ignores a result's
 * `content-length`, and one set on FC 2.0's `resp`; a server writing the answer (the emulator's
 * trigger) sends it. Also used by `writeFc2Response`.
 */
export function keepHeadLength(
  headers: Record<string, string>,
  response: { statusCode: number; body: ResponseBody },
): void {
  if (response.body.length === 0 || isNoBodyResponse('GET', response.statusCode)) return;
  for (const name in headers) if (name.toLowerCase() === 'content-length') return;
  headers['content-length'] = String(Buffer.byteLength(response.body));
}

/** A plain {@link FcHttpResult} made with `new`, never pretenured by V8 (see `ParsedRequest`). */
const HttpResult = plainConstructor(function HttpResult(
  this: FcHttpResult,
  statusCode: number,
  headers: Record<string, string>,
  isBase64Encoded: boolean,
  body: string,
) {
  this.statusCode = statusCode;
  this.headers = headers;
  this.isBase64Encoded = isBase64Encoded;
  this.body = body;
});

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/**
 * Single-valued header map with cookies spread over case variants of `set-cookie`.
 *
 * @example
 * ```ts
 * flattenHeaders({ accept: 'text/html', vary: ['accept', 'origin'], 'set-cookie': ['a=1', 'b=2'] });
 * // { accept: 'text/html', vary: 'accept, origin', 'set-cookie': 'a=1', 'Set-cookie': 'b=2' }
 * ```
 */
export function flattenHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  // Object.keys, not for-in: Node's getHeaders() object has no prototype and for-in is slow on it.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (typeof value === 'string') {
      out[name] = value;
    } else if (Array.isArray(value)) {
      if (name === 'set-cookie') {
        value.forEach((cookie, i) => {
          out[cookieHeaderName(i)] = String(cookie);
        });
      } else {
        out[name] = value.join(', ');
      }
    } else {
      out[name] = String(value);
    }
  }
  return out;
}

/**
 * The header name for the `i`-th cookie: `set-cookie` with the letters' case flipped by the
 * bits of `i` (`set-cookie`, `Set-cookie`, `sEt-cookie`, ...), 512 distinct names.
 *
 * @example
 * ```ts
 * cookieHeaderName(0); // 'set-cookie'
 * cookieHeaderName(1); // 'Set-cookie'
 * ```
 */
export function cookieHeaderName(i: number): string {
  if (i >= 512) throw new RangeError('More than 512 Set-Cookie headers in one response');
  let out = '';
  let bit = 0;
  for (const ch of 'set-cookie') {
    if (ch === '-') {
      out += ch;
      continue;
    }
    out += (i >> bit) & 1 ? ch.toUpperCase() : ch;
    bit++;
  }
  return out;
}
