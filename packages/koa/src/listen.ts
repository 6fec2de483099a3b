import type { IncomingMessage, ServerResponse } from 'node:http';
import { createConsoleLogger, type FcListenOptions, type FcServer, listenFc } from '@fc-async/core';
import { answerNullThrows, type KoaErrorEmitter, logKoaErrors } from './errors.js';
import { bindFcAsync } from './middleware.js';

/**
 * Serves a Koa app as an FC custom runtime: port from `FC_CUSTOM_LISTEN_PORT`, then
 * `FC_SERVER_PORT`, then 9000, on `0.0.0.0`, keep-alive on and no request timeout; answers FC's
 * `POST /initialize` and `GET /pre-stop` (which lets the app's `fcAsync()` tasks finish, then
 * flushes, within `preStopTimeoutMs`); shuts down gracefully on SIGTERM. Like `app.listen()`,
 * it takes the middleware added so far. The app's errors go to `options.logger` (the app's
 * `fcAsync()` logger when it has one; none of them when the app has an `error` listener of its
 * own), as Express's `listen()` logs its own, not Koa's stack on stderr.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { fcAsync, listen } from '@fc-async/koa';
 *
 * const app = new Koa();
 * app.use(fcAsync());
 * app.use((ctx) => { ctx.body = 'ok'; });
 * const server = await listen(app);
 * ```
 */
export function listen(
  app: { callback(): (req: IncomingMessage, res: ServerResponse) => unknown },
  options: FcListenOptions = {},
): Promise<FcServer> {
  if (!app || typeof app.callback !== 'function') {
    return Promise.reject(new TypeError('Expected `app` to be a Koa application (with a callback() method)'));
  }
  // Before the middleware is bound: an `fcAsync()` in the app then names its own logger instead.
  const logger = options.logger ?? createConsoleLogger();
  logKoaErrors(app as typeof app & KoaErrorEmitter, () => logger, false);
  try {
    bindFcAsync(app as { middleware?: unknown });
  } catch (error) {
    return Promise.reject(error); // a middleware already serving another app: listen() rejects
  }
  answerNullThrows(app as { middleware?: unknown });
  return listenFc(app.callback(), options, { app });
}
