import { type FcListenOptions, type FcServer, listenFc } from '@fc-async/core';
import type { FastifyInstance } from 'fastify';

/**
 * Serves a Fastify app as an FC custom runtime: makes it ready, then listens on the port from
 * `FC_CUSTOM_LISTEN_PORT`, then `FC_SERVER_PORT`, then 9000, on `0.0.0.0`, keep-alive on and
 * no request timeout; answers FC's `POST /initialize` and `GET /pre-stop` (which lets the
 * `fcAsync` plugin's tasks finish, then flushes, within `preStopTimeoutMs`); shuts down
 * gracefully on SIGTERM, ending with `app.close()`. Requests go to Fastify's router through a
 * server of fc-async's own, not `app.server`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { fcAsync, listen } from '@fc-async/fastify';
 *
 * const app = Fastify();
 * await app.register(fcAsync);
 * app.get('/', async () => 'ok');
 * const server = await listen(app);
 * ```
 */
export function listen(
  app: Pick<FastifyInstance, 'ready' | 'close' | 'routing' | 'server'>,
  options: FcListenOptions = {},
): Promise<FcServer> {
  if (!app || typeof app.routing !== 'function' || typeof app.ready !== 'function') {
    return Promise.reject(new TypeError('Expected `app` to be a Fastify instance'));
  }
  return listenFc((req, res) => app.routing(req, res), options, {
    app: app.server,
    ready: () => app.ready(),
    close: () => Promise.resolve(app.close()),
  });
}
