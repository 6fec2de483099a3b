import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@fc-async/core';

interface HttpishError {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
  code?: unknown;
  type?: unknown;
}

/**
 * The end of an app's chain: what Express's `finalhandler` does, minus the stack trace it sends
 * outside production and the message of a 5xx. A 4xx error keeps its status and a stable code
 * (its `code`, else its `type`, as body-parser sets); any other error is logged and answered a
 * generic 500. `error` undefined (or `'route'`, `'router'`): no route answered, 404.
 */
export function finish(error: unknown, req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  if (res.headersSent) {
    if (error) {
      logger.error('express error after the response started', { error });
      res.destroy(error instanceof Error ? error : undefined);
    }
    return;
  }
  if (error === undefined || error === null || error === 'route' || error === 'router') {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    send(res, 404, { code: 'NotFound', message: `Cannot ${req.method} ${path}` });
    return;
  }
  const e = (typeof error === 'object' ? error : {}) as HttpishError;
  const status = Number(e.status ?? e.statusCode);
  if (status >= 400 && status < 500) {
    const code = typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : 'BadRequest';
    const message = e.expose === true && typeof e.message === 'string' ? e.message : 'Bad Request';
    send(res, status, { code, message });
    return;
  }
  logger.error('express app failed', { error });
  send(res, 500, { code: 'InternalError', message: 'Internal Server Error' });
}

function send(res: ServerResponse, status: number, body: { code: string; message: string }): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
