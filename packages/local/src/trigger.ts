import { createServer, type Server, type ServerResponse } from 'node:http';
import { isFcAsyncError } from '@fc-async/core';
import { MAX_SYNC_BODY, readBody } from './body.js';
import { writeResult } from './event.js';
import { overTriggerLimits } from './limits.js';
import type { EmulatorLog } from './log.js';
import type { FunctionRegistry } from './registry.js';

function sendJson(res: ServerResponse, status: number, body: object, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...extra });
  res.end(text);
}

/** The trigger's calls carry Node's headers (see `LocalFunction.invoke`). */
const FROM_NODE = Object.freeze({ nodeHeaders: true });

/**
 * The HTTP trigger: every request becomes an FC 3.0 event for its function (see
 * {@link FunctionRegistry.route}) and goes through the function's handler, async engine included.
 * Trigger-level errors answer `{ code, message }` like fc-async's own.
 */
export function createTriggerServer(registry: FunctionRegistry, log: EmulatorLog): Server & { closing: boolean } {
  // requireHostHeader: false: a request without Host gets the JSON error below, not Node's bare 400.
  const server = createServer({ requireHostHeader: false }, async function fcTrigger(req, res) {
    const started = performance.now();
    if (server.closing) {
      sendJson(
        res,
        503,
        { code: 'ServiceUnavailable', message: 'The emulator is shutting down' },
        { connection: 'close' },
      );
      return;
    }
    // HTTP/1.1 requires Host (RFC 9112 section 3.2); Node's own check answers without a body.
    if (req.headers.host === undefined && req.httpVersion === '1.1') {
      sendJson(
        res,
        400,
        { code: 'InvalidArgument', message: 'An HTTP/1.1 request must carry a Host header' },
        { connection: 'close' },
      );
      return;
    }
    const over = overTriggerLimits(req);
    if (over) {
      sendJson(res, over.statusCode, over.toJSON(), { connection: 'close' });
      return;
    }
    const route = registry.route(req.headers.host, req.url ?? '/');
    if (!route) {
      const known = registry.http.map((f) => registry.prefix(f)).join(', ') || 'none';
      sendJson(res, 404, {
        code: 'FunctionNotFound',
        message: `No HTTP function serves this path; functions: ${known}`,
      });
      return;
    }
    const { fn, url } = route;
    const method = req.method ?? 'GET';
    const methods = fn.spec.http?.methods;
    if (methods && !methods.includes(method)) {
      sendJson(res, 405, {
        code: 'MethodNotAllowed',
        message: `The HTTP trigger of ${fn.spec.name} accepts ${methods.join(', ')}`,
      });
      return;
    }
    try {
      const body = await readBody(req, MAX_SYNC_BODY, 'InvalidArgument');
      const call = { method, url, headers: req.headers, body, sourceIp: req.socket.remoteAddress };
      const { result, requestId } = await fn.invoke(call, FROM_NODE);
      writeResult(res, result, method, requestId);
      const q = url.indexOf('?');
      log.invocation({
        function: fn.spec.name,
        requestId,
        // An accepted async call is a 202 carrying its task id (whatever header asked for it).
        type: result.statusCode === 202 && result.headers['x-fc-async-task-id'] !== undefined ? 'Async' : 'Sync',
        status: result.statusCode,
        method,
        path: q < 0 ? url : url.slice(0, q),
        durationMs: Math.round(performance.now() - started),
        taskId: result.headers['x-fc-async-task-id'],
        via: 'http',
      });
    } catch (error) {
      if (isFcAsyncError(error) && error.statusCode < 500) {
        sendJson(res, error.statusCode, error.toJSON(), { connection: 'close' });
      } else {
        log.logger.error('trigger request failed', { function: fn.spec.name, error });
        if (!res.headersSent) sendJson(res, 500, { code: 'InternalError', message: 'Internal Server Error' });
        else res.destroy();
      }
    }
  }) as Server & { closing: boolean };
  server.closing = false;
  server.keepAliveTimeout = 65_000;
  return server;
}
