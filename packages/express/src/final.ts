import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { getInvocation, type Logger, logAppError, thrownError } from '@fc-async/core';

interface HttpishError {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
  code?: unknown;
  type?: unknown;
  headers?: unknown;
}

const FIELDS = ['status', 'statusCode', 'expose', 'message', 'code', 'type', 'headers'] as const;

/**
 * The fields of a thrown value that shape the answer, each read once and without throwing: an app
 * may throw or pass to `next()` anything, a Proxy whose every trap throws or an object whose
 * `status` getter throws included. A field that cannot be read counts as absent (the answer is then
 * the generic 500), where reading it here would throw out of the router into the process.
 */
function httpishFields(error: unknown): HttpishError {
  const fields: HttpishError = {};
  if (typeof error !== 'object' || error === null) return fields;
  for (const name of FIELDS) {
    try {
      fields[name] = (error as HttpishError)[name];
    } catch {
      // Left out.
    }
  }
  return fields;
}

/**
 * The end of an app's chain: what Express's `finalhandler` does, minus the stack trace it sends
 * outside production and the message of a 5xx. An error keeps its 4xx or 5xx status and its
 * `headers`; a 4xx gets a stable code (its `code`, else its `type`, as body-parser sets, else
 * one from the status); a 5xx, or an error without such a status (then 500), is logged and
 * answered a generic body. `error` undefined (or `'route'`, `'router'`): no route answered, 404.
 */
export function finish(error: unknown, req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  if (res.headersSent) {
    if (error) {
      // As an `Error` (thrownError reads any value without throwing), so that the invocation fails
      // with what was thrown; logged with the request id, and not again by the handler it rejects.
      const failure = thrownError(error);
      logAppError(logger, 'express', failure, getInvocation(req));
      res.destroy(failure);
    }
    return;
  }
  // What the route set for the answer it meant to send (a precompressed file's gzip) does not
  // describe this one: removed first, as Express's final handler does (an error's own headers,
  // a 416's Content-Range, are set after).
  res.removeHeader('content-encoding');
  res.removeHeader('content-language');
  res.removeHeader('content-range');
  if (error === undefined || error === null || error === 'route' || error === 'router') {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    send(res, 404, { code: 'NotFound', message: `Cannot ${req.method} ${path}` });
    return;
  }
  const e = httpishFields(error);
  const given = Number(e.status ?? e.statusCode);
  // As Express's own final handler: an error's 4xx or 5xx status stands, and so do its headers
  // (`Allow` on a 405, `Retry-After` on a 503); only a 5xx's message and stack stay in the log.
  const status = Number.isInteger(given) && given >= 400 && given < 600 ? given : 500;
  setErrorHeaders(res, e.headers);
  if (status < 500) {
    const code = typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : reasonCode(status);
    const message = e.expose === true && typeof e.message === 'string' ? e.message : (STATUS_CODES[status] ?? 'Error');
    send(res, status, { code, message });
    return;
  }
  logAppError(logger, 'express', error, getInvocation(req));
  const generic = status === 500 ? 'InternalError' : reasonCode(status);
  send(res, status, { code: generic, message: STATUS_CODES[status] ?? 'Internal Server Error' });
}

/** `Method Not Allowed` → `MethodNotAllowed`: a stable code from the status. */
const reasonCode = (status: number) => (STATUS_CODES[status] ?? 'Error').replace(/[^A-Za-z]/g, '');

/** An error's own `headers` (what http-errors and Express's final handler use), where they are plain values. */
function setErrorHeaders(res: ServerResponse, headers: unknown): void {
  if (typeof headers !== 'object' || headers === null) return;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' && typeof value !== 'number' && !Array.isArray(value)) continue;
    try {
      res.setHeader(name, value);
    } catch {
      // A name or value Node refuses is left out, as Express's final handler would fail on it.
    }
  }
}

function send(res: ServerResponse, status: number, body: { code: string; message: string }): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
