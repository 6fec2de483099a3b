import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  buildQuery,
  type FcContext,
  type FcHttpEvent,
  type FcHttpResult,
  type FcRequest,
  fcHttpEvent,
  fcQueryParameters,
  isFcTextBody,
} from '@fc-async/core';

/** A request as the emulator received it, before it becomes an FC event. */
export interface IncomingCall {
  method: string;
  /** Raw path plus query, as `req.url`. */
  url: string;
  /** Lower-case names, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  sourceIp?: string | undefined;
}

/** What FC knows about the function it calls, and puts in the common headers and the context. */
export interface FunctionIdentity {
  name: string;
  handler: string;
  region: string;
  accountId: string;
  qualifier: string;
  memorySize: number;
  timeout: number;
  /**
   * The Simple Log Service project and logstore of the function's `logConfig`, both or neither:
   * without them `x-fc-service-logproject` / `x-fc-service-logstore` are not sent (a name the
   * emulator does not know is not made up) and `context.service` has them empty.
   */
  logProject?: string | undefined;
  logStore?: string | undefined;
  /** FC 2.0 functions' context adds `service.name` and `tracing` (empty locally: no tracing service). */
  style?: 'fc3' | 'fc2' | undefined;
  /** An event function (no HTTP trigger): FC calls it on `/invoke`, its body the event. */
  event?: boolean | undefined;
  serviceName?: string | undefined;
}

/** `FC_SERVICE_NAME`, which FC 2.0 sets for a function of a named service (FC 3.0 has no services). */
export function serviceNameEnv(fn: FunctionIdentity): { FC_SERVICE_NAME?: string } {
  return fn.style === 'fc2' && typeof fn.serviceName === 'string' && fn.serviceName !== ''
    ? { FC_SERVICE_NAME: fn.serviceName }
    : {};
}

/**
 * `x-fc-*` headers a client may send on the trigger: FC's async controls. Every other `x-fc-*`
 * header from a client is dropped (FC does), so that a client cannot pose as FC (`x-fc-retry-count`,
 * credentials).
 */
const CLIENT_FC_HEADERS = new Set([
  'x-fc-invocation-type',
  'x-fc-async-task-id',
  'x-fc-stateful-async-invocation-id',
  'x-fc-async-delay',
  'x-fc-log-type',
]);

/**
 * The call's headers as FC passes them on (a client's own `x-fc-*` headers dropped unless
 * `trusted`, the values of a repeated header joined with commas), then FC's common headers.
 */
function fcHeaders(call: IncomingCall, fn: FunctionIdentity, requestId: string, trusted: boolean) {
  const headers: Record<string, string> = {};
  for (const name in call.headers) {
    const value = call.headers[name];
    if (value === undefined) continue;
    if (!trusted && name.startsWith('x-fc-') && !CLIENT_FC_HEADERS.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  headers['x-fc-request-id'] = requestId;
  headers['x-fc-function-name'] = fn.name;
  headers['x-fc-function-handler'] = fn.handler;
  headers['x-fc-function-memory'] = String(fn.memorySize);
  headers['x-fc-region'] = fn.region;
  headers['x-fc-account-id'] = fn.accountId;
  headers['x-fc-qualifier'] = fn.qualifier;
  // No x-fc-version-id: the one local version is LATEST, which has no version id.
  if (fn.logProject !== undefined) {
    headers['x-fc-service-logproject'] = fn.logProject;
    headers['x-fc-service-logstore'] = fn.logStore as string;
  }
  headers['x-fc-control-path'] = fn.event ? '/invoke' : '/http-invoke';
  // FC counts every invocation's retries, a sync call's too (0); a replayed attempt brings its own.
  headers['x-fc-retry-count'] ??= '0';
  return headers;
}

/**
 * The FC 3.0 HTTP event of a call, with the common headers FC adds. `trusted` keeps the `x-fc-*`
 * headers of the call (set by the emulator itself, e.g. on a replayed async attempt).
 */
export function buildFcEvent(
  call: IncomingCall,
  fn: FunctionIdentity,
  requestId: string,
  trusted = false,
  now = Date.now(),
): FcHttpEvent {
  return fcHttpEvent({
    method: call.method,
    url: call.url,
    headers: fcHeaders(call, fn, requestId, trusted),
    body: call.body,
    sourceIp: call.sourceIp ?? '127.0.0.1',
    requestId,
    accountId: fn.accountId,
    timeEpoch: now,
  });
}

const EMPTY = Buffer.alloc(0);
/** Methods `parseFcEvent` takes as they are; a call with another one goes through the event. */
const PLAIN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
/**
 * A method token `parseFcEvent` keeps as it is (upper case, at most 32 characters): an `asSent`
 * call with one (`PROPFIND`, `M-SEARCH`) is built here too, as the event has no raw query to keep.
 */
const UPPER_METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Z-]{1,32}$/;

/** How {@link requestFromCall} builds a request. */
export interface CallOptions {
  /** Keep the call's own `x-fc-*` headers (set by the emulator itself, e.g. on a replayed attempt). */
  trusted?: boolean;
  /**
   * The query string and the body as the client sent them (FC 2.0 and custom runtimes), not as
   * FC 3.0's event has them (repeated query values joined, a text body as its UTF-8 round trip).
   */
  asSent?: boolean;
  now?: number;
}

/**
 * What the core's `parseFcEvent` makes of `buildFcEvent(call, fn, requestId, trusted, now)`,
 * built without the event: the same headers in the same order (lower-case names, FC's common
 * headers, `host` and `content-length` as the parser sets them), the URL with the query decoded
 * and encoded again (repeated values joined with commas, as in FC 3.0's event) and a text body as
 * its UTF-8 round trip, unless `asSent`. For the trigger's own calls, whose header names are
 * Node's (lower-case tokens); `undefined` for a method the parser would refuse, which then takes
 * the event path. A test holds the two paths equal.
 */
export function requestFromCall(
  call: IncomingCall,
  fn: FunctionIdentity,
  requestId: string,
  options: CallOptions = {},
): FcRequest | undefined {
  const { trusted = false, asSent = false, now = Date.now() } = options;
  if (!PLAIN_METHODS.has(call.method) && !(asSent && UPPER_METHOD_TOKEN.test(call.method))) return undefined;
  const headers = fcHeaders(call, fn, requestId, trusted);
  if (headers.host === undefined) headers.host = 'localhost';
  let body = call.body;
  if (body.length === 0) body = EMPTY;
  else if (!asSent && isFcTextBody(headers['content-type'])) {
    if (!isUtf8(body)) body = Buffer.from(body.toString('utf8'), 'utf8');
  }
  if (body.length > 0 || headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
  if (headers['transfer-encoding'] !== undefined) delete headers['transfer-encoding'];
  const q = call.url.indexOf('?');
  const rawPath = q < 0 ? call.url : call.url.slice(0, q);
  const path = rawPath.charCodeAt(0) === 47 /* / */ ? rawPath : `/${rawPath}`;
  return {
    method: call.method,
    url: q < 0 ? path : path + (asSent ? call.url.slice(q) : buildQuery(fcQueryParameters(call.url.slice(q + 1)))),
    headers,
    body,
    remoteAddress: call.sourceIp ?? '127.0.0.1',
    requestId,
    receivedAt: now,
  };
}

/** An id for `FC_INSTANCE_ID`, in the shape of FC's (`c-<8 hex>-local-<16 hex>` here). */
export function newInstanceId(): string {
  return `c-${randomBytes(4).toString('hex')}-local-${randomBytes(8).toString('hex')}`;
}

/** The `context` FC passes to a handler (credentials are empty locally). */
export function buildContext(fn: FunctionIdentity, requestId: string, logger?: unknown): FcContext {
  const service = {
    logProject: fn.logProject ?? '',
    logStore: fn.logStore ?? '',
    qualifier: fn.qualifier,
    versionId: '',
  };
  const context: FcContext = {
    requestId,
    credentials: { accessKeyId: '', accessKeySecret: '', securityToken: '' },
    function: { name: fn.name, handler: fn.handler, memory: fn.memorySize, timeout: fn.timeout },
    service,
    region: fn.region,
    accountId: fn.accountId,
    logger,
  };
  if (fn.style === 'fc2') {
    context.service = { name: fn.serviceName ?? '', ...service };
    context.tracing = { openTracingSpanContext: '', openTracingSpanBaggages: {}, jaegerEndpoint: '' };
  }
  return context;
}

const DROPPED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** Writes an FC HTTP result to a Node response; `set-cookie` case variants become one list again. */
export function writeResult(res: ServerResponse, result: FcHttpResult, method: string, requestId: string): void {
  const headers: Record<string, string | string[]> = {};
  const cookies: string[] = [];
  for (const name in result.headers) {
    const value = result.headers[name] as string;
    const lower = name.toLowerCase();
    if (lower === 'set-cookie') cookies.push(value);
    else if (!DROPPED.has(lower)) headers[lower] = value;
  }
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  headers['x-fc-request-id'] ??= requestId;
  // 204 and 304 carry no body, nor a length (RFC 9110 8.6, 15.3.5, 15.4.5).
  const bodiless = result.statusCode === 204 || result.statusCode === 304;
  const answered = bodiless || !result.body ? undefined : resultBody(result);
  const length = answered === undefined ? undefined : Buffer.byteLength(answered);
  // HEAD: its GET's length (RFC 9110 9.3.2), as Node's server sends one an app set: the body the
  // function answered, when it is still there, else the length the result kept of it (the core's
  // answer drops a HEAD's body and keeps its length, an app's own too); none without either, as 0
  // would not be its GET's length.
  if (method === 'HEAD') {
    const kept = length === undefined && !bodiless ? headLength(result.headers) : undefined;
    if (length !== undefined || kept !== undefined) headers['content-length'] = String(length ?? kept);
  } else if (!bodiless) headers['content-length'] = String(length ?? 0);
  res.writeHead(result.statusCode, headers);
  // A string body goes out in one write with the head; an empty end() too (no writev of two chunks).
  if (answered === undefined || method === 'HEAD') res.end();
  else res.end(answered);
}

/** A result's `content-length` (any case), when it is a length. */
function headLength(headers: Record<string, string>): string | undefined {
  for (const name in headers) {
    if (name.toLowerCase() !== 'content-length') continue;
    const value = (headers[name] as string).trim();
    return /^\d{1,15}$/.test(value) ? String(Number(value)) : undefined;
  }
  return undefined;
}

const resultBody = (result: FcHttpResult) =>
  result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
