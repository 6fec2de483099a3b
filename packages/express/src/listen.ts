import type { IncomingMessage, ServerResponse } from 'node:http';
import { type FcListenOptions, type FcServer, listenFc } from '@fc-async/core';

/**
 * Serves an Express app as an FC custom runtime: port from `FC_CUSTOM_LISTEN_PORT`, then
 * `FC_SERVER_PORT`, then 9000, on `0.0.0.0`, keep-alive on and no request timeout; answers FC's
 * `POST /initialize` and `GET /pre-stop` (which lets the app's `fcAsync()` tasks finish, then
 * flushes, within `preStopTimeoutMs`); shuts down gracefully on SIGTERM.
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
  app: (req: IncomingMessage, res: ServerResponse) => unknown,
  options: FcListenOptions = {},
): Promise<FcServer> {
  if (typeof app !== 'function') {
    return Promise.reject(new TypeError(`Expected \`app\` to be an Express application, got \`${typeof app}\``));
  }
  return listenFc((req, res) => app(req, res), options, { app });
}
