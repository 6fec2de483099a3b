import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import {
  type BridgeResponse,
  type FcContext,
  type FcHttpResult,
  getInvocation,
  MAX_TIMER_MS,
  type NodeHandler,
} from '@fc-async/core';
import { buildContext, buildFcEvent, type FunctionIdentity } from './event.js';

type AnyHandler = (...args: unknown[]) => unknown;

/** Where a plain handler's logging goes: `context.logger` for a request, and a handler's failure. */
export interface FunctionLog {
  /** FC's `context.logger` for the invocation `requestId`. */
  forRequest(requestId: string): unknown;
  /** A handler that threw, rejected or called back an error: FC's runtime writes it to the function's log. */
  failed(requestId: string, error: unknown): void;
}

/**
 * How long after the function's timeout {@link callHandler} gives a handler up. The invocation's
 * own deadline fires at the timeout (a sync call's 504 `FunctionTimeout`, an attempt's
 * `InvocationError`); this backstop, armed a moment later, never races it: two timers of one
 * length fire in either order on a loaded machine, and an attempt the handler's timer ended first
 * was recorded `UnhandledInvocationError`.
 */
export const HANDLER_TIMEOUT_LAG_MS = 100;

/**
 * Calls an FC handler that returns a promise, returns a value, or calls `callback`; bounded by
 * `timeoutMs` (plus {@link HANDLER_TIMEOUT_LAG_MS}, see there).
 */
export function callHandler(fn: AnyHandler, args: unknown[], timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let done = false;
    // A timeout past a timer's longest (a hook's `timeout: 3000000`) would fire at once: never, rather.
    const delay = Math.min(timeoutMs + HANDLER_TIMEOUT_LAG_MS, MAX_TIMER_MS);
    const timer = setTimeout(() => finish(functionTimeout(timeoutMs)), delay);
    function finish(error: unknown, value?: unknown) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value);
    }
    try {
      const result = fn(...args, (error: unknown, value: unknown) => finish(error, value));
      if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(
          (v) => finish(undefined, v),
          (e) => finish(e || falsyThrown('rejected with', e)),
        );
      } else if (fn.length <= args.length) {
        finish(undefined, result);
      }
    } catch (error) {
      // Whatever is thrown is a failure: `throw null` or `throw 0` as well.
      finish(error || falsyThrown('threw', error));
    }
  });
}

/** The error of a handler that threw or rejected with a falsy value (`null`, `0`, `''`), which would read as no error. */
function falsyThrown(how: string, value: unknown): Error {
  const error = new Error(`The function ${how} ${value === '' ? "''" : String(value)}`);
  // Its stack would be the emulator's own frames, not the function's.
  error.stack = `Error: ${error.message}`;
  return error;
}

/** The handler's own timeout: an error of the emulator's making, whose stack is the emulator's timer. */
const TIMED_OUT = Symbol('fc-async function timeout');

function functionTimeout(timeoutMs: number): Error {
  return Object.assign(new Error(`Function timed out after ${timeoutMs / 1000} s`), {
    name: 'TimeoutError',
    [TIMED_OUT]: true,
  });
}

/** True for the error of a handler that ran past its timeout (see callHandler). */
export function isFunctionTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && TIMED_OUT in error;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** FC answers a handler that threw with 502 and `x-fc-error-type`, never with the stack, which goes to the log. */
function writeFunctionError(res: ServerResponse, error: unknown, log: FunctionLog, req: IncomingMessage): void {
  const e = error instanceof Error ? error : new Error(String(error));
  log.failed(requestIdOf(req), e);
  if (res.headersSent) {
    res.destroy(e);
    return;
  }
  const body = JSON.stringify({ errorMessage: e.message, errorType: e.name || 'Error' });
  res.writeHead(502, { 'content-type': 'application/json', 'x-fc-error-type': 'UnhandledInvocationError' });
  res.end(body);
}

/**
 * FC's rule for its built-in runtimes: an invocation failed when the handler threw, called back an
 * error or ran past its timeout (the answer then carries `x-fc-error-type`, which a handler's own
 * `X-Fc-*` headers never set); a status the handler returned, a 500 included, is its answer.
 */
export function isFunctionError(response: BridgeResponse): boolean {
  return response.headers['x-fc-error-type'] !== undefined;
}

const IGNORED = /^(x-fc-|connection$|content-length$|date$|keep-alive$|server$|content-disposition$)/i;

/** What FC ignores in a built-in runtime's result besides `X-Fc-*` and the connection's own (fc-contract section 3). */
const IGNORED_IN_RESULT = /^(date|server|content-disposition)$/i;

/**
 * `result` without the headers FC ignores in a built-in runtime's answer (an app's `Content-Disposition`
 * from `res.download()`, its `Date` and `Server`), so that what works under the emulator works on FC.
 * The result itself when it has none of them (every 202, most answers).
 */
export function withoutIgnoredHeaders(result: FcHttpResult): FcHttpResult {
  let headers: Record<string, string> | undefined;
  for (const name in result.headers) {
    if (!IGNORED_IN_RESULT.test(name)) continue;
    headers ??= { ...result.headers };
    delete headers[name];
  }
  return headers ? { ...result, headers } : result;
}

/** Writes what an FC 3.0 HTTP handler returned (fc-contract section 3); each `Set-Cookie` case variant is a cookie. */
function writeHttpResult(res: ServerResponse, result: unknown): void {
  const r = result as { statusCode?: unknown; headers?: unknown; body?: unknown; isBase64Encoded?: unknown } | null;
  if (r && typeof r === 'object' && typeof r.statusCode === 'number') {
    const headers: Record<string, string | string[]> = {};
    const cookies: string[] = [];
    if (r.headers && typeof r.headers === 'object') {
      for (const [k, v] of Object.entries(r.headers)) {
        if (IGNORED.test(k)) continue;
        const name = k.toLowerCase();
        if (name === 'set-cookie') cookies.push(...(Array.isArray(v) ? v.map(String) : [String(v)]));
        else headers[name] = String(v);
      }
    }
    if (cookies.length > 0) headers['set-cookie'] = cookies;
    const body = r.body === undefined || r.body === null ? '' : r.body;
    res.writeHead(r.statusCode, headers);
    res.end(Buffer.isBuffer(body) ? body : Buffer.from(String(body), r.isBase64Encoded === true ? 'base64' : 'utf8'));
    return;
  }
  writeValue(res, result, 'application/json');
}

/** A plain return value: bytes as they are, strings as text, anything else as JSON. */
function writeValue(res: ServerResponse, value: unknown, textType = 'text/plain; charset=utf-8'): void {
  if (Buffer.isBuffer(value)) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(value);
  } else if (typeof value === 'string') {
    res.writeHead(200, { 'content-type': textType }).end(value);
  } else {
    res.writeHead(200, { 'content-type': 'application/json' }).end(value === undefined ? '' : JSON.stringify(value));
  }
}

function requestIdOf(req: IncomingMessage): string {
  return getInvocation(req)?.requestId ?? String(req.headers['x-fc-request-id'] ?? '');
}

/**
 * The `context` of a call: FC's, plus `retryCount` on an async attempt (0 on the first), as the
 * official runtimes give it next to the `x-fc-retry-count` header.
 */
function contextOf(req: IncomingMessage, fn: FunctionIdentity, log: FunctionLog): FcContext {
  const invocation = getInvocation(req);
  const requestId = requestIdOf(req);
  const context = buildContext(fn, requestId, log.forRequest(requestId));
  if (invocation?.type === 'Async') context.retryCount = invocation.attempt;
  return context;
}

/**
 * Serves an FC 3.0 HTTP handler `handler(event, context)` (also an fc-async handler, which runs
 * in platform mode under the emulator): the request becomes the FC 3.0 event again, and the
 * returned result the response.
 */
export function fc3HttpListener(handler: AnyHandler, fn: FunctionIdentity, log: FunctionLog): NodeHandler {
  return async function fc3HttpListener(req, res) {
    try {
      const body = await readBody(req);
      const context = contextOf(req, fn, log);
      const call = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body,
        sourceIp: req.socket?.remoteAddress,
      };
      const event = Buffer.from(JSON.stringify(buildFcEvent(call, fn, requestIdOf(req), true)));
      const result = await callHandler(handler, [event, context], fn.timeout * 1000);
      writeHttpResult(res, result);
    } catch (error) {
      writeFunctionError(res, error, log, req);
    }
  };
}

/** Serves an event function `handler(event, context)`: the body is the event, the return value the response. */
export function eventListener(handler: AnyHandler, fn: FunctionIdentity, log: FunctionLog): NodeHandler {
  return async function eventListener(req, res) {
    try {
      const body = await readBody(req);
      const context = contextOf(req, fn, log);
      writeValue(res, await callHandler(handler, [body, context], fn.timeout * 1000));
    } catch (error) {
      writeFunctionError(res, error, log, req);
    }
  };
}

/** What FC 2.0's `resp.send` takes: a Buffer (any byte array), a string, a readable stream, or nothing. */
function sendable(data: unknown): boolean {
  return (
    data === undefined ||
    data === null ||
    typeof data === 'string' ||
    data instanceof Uint8Array ||
    data instanceof Readable
  );
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** `req.path` of FC 2.0: decoded; a path that is not valid percent-encoding (`/a%ZZ`) is kept as sent. */
function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** The names of FC 2.0's `resp.setHeader` that FC ignores (see fc2Headers). */
const FC2_IGNORED = /^(x-fc-|date$|server$|content-disposition$)/i;

/**
 * FC 2.0's `resp.setHeader` and `resp.deleteHeader`: names that differ in letter case are different
 * headers there, which is how a handler sends several `Set-Cookie` (`set-cookie`, `Set-cookie`, …:
 * docs/adapters.md). Node's `setHeader` folds the case: the cookies are kept by the name given,
 * and sent together. `X-Fc-*`, `Content-Disposition`, `Date` and `Server`, which FC ignores in an
 * answer (fc-contract section 3), are ignored here too: an `X-Fc-Error-Type` the handler sets is
 * not a function error. The connection's own headers are the emulator's server's to write, and a
 * `Content-Length` is that of the body sent (a HEAD answer's keeps its GET's, as for FC 3.0).
 */
function fc2Headers(res: ServerResponse) {
  let cookies: Map<string, string> | undefined;
  const sendCookies = () => {
    if (cookies && cookies.size > 0) res.setHeader('set-cookie', [...cookies.values()]);
    else res.removeHeader('set-cookie');
  };
  return {
    set(name: string, value: string) {
      if (FC2_IGNORED.test(name)) return;
      if (name.toLowerCase() !== 'set-cookie') return void res.setHeader(name, value);
      cookies ??= new Map();
      cookies.set(name, value);
      sendCookies();
    },
    delete(name: string) {
      if (FC2_IGNORED.test(name)) return;
      if (name.toLowerCase() !== 'set-cookie') return void res.removeHeader(name);
      cookies?.delete(name);
      sendCookies();
    },
  };
}

/** Serves an FC 2.0 HTTP handler `handler(req, resp, context)`. */
export function fc2HttpListener(handler: AnyHandler, fn: FunctionIdentity, log: FunctionLog): NodeHandler {
  return async function fc2HttpListener(req, res) {
    try {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://fc.local');
      // fromEntries: a name `__proto__` is a key like any other.
      const queries: Record<string, string | string[]> = Object.fromEntries(
        [...new Set(url.searchParams.keys())].map((key) => {
          const all = url.searchParams.getAll(key);
          return [key, all.length === 1 ? (all[0] as string) : all];
        }),
      );
      const request = Object.assign(Readable.from([body]), {
        headers: req.headers,
        path: decodedPath(url.pathname),
        queries,
        method: req.method,
        clientIP: req.socket?.remoteAddress ?? '127.0.0.1',
        url: req.url,
        body,
      });
      let status = 200;
      const context = contextOf(req, fn, log);
      // `resp.send` is the handler's way of saying it is done: it plays the callback's part.
      const run = (done: (error: unknown) => void) => {
        const headers = fc2Headers(res);
        const response = {
          setStatusCode: (code: number) => {
            status = code;
          },
          setHeader: (name: string, value: string) => headers.set(name, value),
          deleteHeader: (name: string) => headers.delete(name),
          send: (data: Buffer | string | Readable) => {
            // Checked before the answer starts, so that a wrong type is the handler's error (502).
            if (!sendable(data)) {
              throw new TypeError(`resp.send expects a Buffer, a string or a Readable stream, got ${typeName(data)}`);
            }
            res.statusCode = status;
            if (data instanceof Readable) {
              // A stream that fails fails the invocation, rather than leaving it to its timeout.
              data.once('error', done);
              data.pipe(res).on('finish', () => done(undefined));
            } else res.end(data, () => done(undefined));
          },
        };
        const result = handler(request, response, context);
        // A promise that settles before `send` is called still has to send: only its rejection counts.
        return result && typeof (result as PromiseLike<unknown>).then === 'function'
          ? (result as Promise<unknown>).then(() => new Promise(() => {}))
          : undefined;
      };
      await callHandler(run as AnyHandler, [], fn.timeout * 1000);
    } catch (error) {
      writeFunctionError(res, error, log, req);
    }
  };
}
