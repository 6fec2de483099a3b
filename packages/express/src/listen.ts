import type { IncomingMessage, ServerResponse } from 'node:http';
import { createConsoleLogger, type FcListenOptions, type FcServer, listenFc, nestAppHint } from '@fc-async/core';
import { finish } from './final.js';
import { bindFcAsync } from './middleware.js';
import { rejectionSettler } from './rejections.js';

/**
 * Serves an Express app as an FC custom runtime: port from `FC_CUSTOM_LISTEN_PORT`, then
 * `FC_SERVER_PORT`, then 9000, on `0.0.0.0`, keep-alive on and no request timeout; answers FC's
 * `POST /initialize` and `GET /pre-stop` (which lets the app's `fcAsync()` tasks finish, then
 * flushes, within `preStopTimeoutMs`); shuts down gracefully on SIGTERM. It is the app's final
 * handler, as `createHandler` is: an error no error middleware answers (one thrown before
 * `fcAsync()` in the chain, on any request) is logged through `options.logger` and answered a
 * generic 500 (a 4xx keeps its status), never Express's page with the stack; an unmatched route
 * answers 404 `{ code: 'NotFound' }`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { fcAsync, listen } from '@fc-async/express';
 *
 * const app = express();
 * app.use(fcAsync());
 * app.get('/', (req, res) => res.send('ok'));
 * const server = await listen(app);
 * ```
 */
export function listen(
  app: (req: IncomingMessage, res: ServerResponse, done?: (error?: unknown) => void) => unknown,
  options: FcListenOptions = {},
): Promise<FcServer> {
  if (typeof app !== 'function') {
    return Promise.reject(
      new TypeError(`Expected \`app\` to be an Express application, got \`${typeof app}\`${nestAppHint(app)}`),
    );
  }
  const logger = options?.logger ?? createConsoleLogger();
  try {
    bindFcAsync(app);
  } catch (error) {
    return Promise.reject(error); // a middleware already serving another app: listen() rejects
  }
  // Express calls its third argument instead of its own final handler (`finalhandler`).
  const settle = rejectionSettler(app);
  return listenFc(
    (req, res) => {
      settle();
      app(req, res, (error) => finish(error, req, res, logger));
    },
    options,
    { app },
  );
}
