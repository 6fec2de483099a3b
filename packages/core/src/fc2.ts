import { badRequest } from './errors.js';
import { headerText } from './event-headers.js';
import type { Fc2Request, Fc2Response } from './fc-types.js';
import { flattenHeaders, keepHeadLength, METHOD_TOKEN } from './fc3.js';
import { buildQuery, encodeDecodedPath, type FcRequest, fixBodyHeaders } from './request.js';
import { type BridgeResponse, isNoBodyResponse } from './response.js';

/**
 * True when the arguments look like FC 2.0's `(req, resp, context)`.
 *
 * @example
 * ```ts
 * declare const req: unknown, resp: unknown;
 * isFc2Call(req, resp); // true inside an FC 2.0 HTTP function
 * ```
 */
export function isFc2Call(a: unknown, b: unknown): boolean {
  return (
    !!b &&
    typeof b === 'object' &&
    typeof (b as Fc2Response).setStatusCode === 'function' &&
    typeof (b as Fc2Response).send === 'function' &&
    !!a &&
    typeof a === 'object'
  );
}

/**
 * Reads an FC 2.0 HTTP request into an {@link FcRequest}: the body from `req.body` when the
 * runtime set it, else from the stream.
 *
 * @example
 * ```ts
 * export async function handler(req: Fc2Request, resp: Fc2Response, context: FcContext) {
 *   const request = await readFc2Request(req);
 *   request.url; // '/jobs?page=2'
 * }
 * ```
 */
export async function readFc2Request(req: Fc2Request): Promise<FcRequest> {
  if (typeof req.method !== 'string' || typeof req.path !== 'string') {
    throw badRequest('InvalidEvent', 'The FC 2.0 request has no method or path');
  }
  if (!METHOD_TOKEN.test(req.method)) throw badRequest('InvalidEvent', 'The FC 2.0 request has no valid method');
  if (!isMap(req.headers)) throw badRequest('InvalidEvent', 'The FC 2.0 request headers must be an object');
  if (!isMap(req.queries)) throw badRequest('InvalidEvent', 'The FC 2.0 request queries must be an object');
  const headers: FcRequest['headers'] = {};
  for (const key in req.headers ?? {}) {
    const value = req.headers[key];
    if (value === undefined || value === null) continue;
    const name = key.toLowerCase();
    const text = headerText(key, value, name === 'cookie' ? '; ' : ', ');
    if (name === '__proto__')
      Object.defineProperty(headers, name, { value: text, enumerable: true, writable: true, configurable: true });
    else headers[name] = text;
  }
  let body: Buffer;
  if (req.body !== undefined && req.body !== null) {
    const given: unknown = req.body;
    if (typeof given === 'string') body = Buffer.from(given, 'utf8');
    else if (given instanceof Uint8Array) body = Buffer.from(given);
    else throw badRequest('InvalidEvent', 'The FC 2.0 request body must be a Buffer or a string');
  } else if (typeof (req as unknown as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk as Uint8Array));
    }
    body = Buffer.concat(chunks);
  } else {
    body = Buffer.alloc(0);
  }
  fixBodyHeaders(headers, body);
  const path = req.path.charCodeAt(0) === 47 ? req.path : `/${req.path}`;
  return {
    method: req.method.toUpperCase(),
    url: encodeDecodedPath(path) + buildQuery(req.queries),
    headers,
    body,
    remoteAddress: typeof req.clientIP === 'string' ? req.clientIP : undefined,
  };
}

/** Absent, or an object that is not an array (`headers`, `queries`). */
function isMap(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value));
}

/**
 * Writes a collected response through FC 2.0's `resp`: status, headers (cookies spread over
 * case variants of `set-cookie`, as for FC 3.0) and the body as bytes. A `HEAD` answer has no
 * body, and keeps the length of the one the app wrote in `content-length`, as FC 3.0's result does.
 *
 * @example
 * ```ts
 * declare const resp: Fc2Response;
 * writeFc2Response(resp, { statusCode: 200, headers: {}, body: 'ok' }, 'GET');
 * ```
 */
export function writeFc2Response(resp: Fc2Response, response: BridgeResponse, method: string): void {
  // Headers first: what FC cannot carry throws before anything is written to `resp`.
  const headers = flattenHeaders(response.headers);
  if (method === 'HEAD') keepHeadLength(headers, response);
  resp.setStatusCode(response.statusCode);
  for (const name in headers) resp.setHeader(name, headers[name] as string);
  if (isNoBodyResponse(method, response.statusCode)) {
    resp.send('');
    return;
  }
  const body = response.body;
  resp.send(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
}
