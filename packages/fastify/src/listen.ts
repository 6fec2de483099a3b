import type { Server } from 'node:http';
import { type FcListenOptions, type FcServer, listenFc, nestAppHint } from '@fc-async/core';
import type { FastifyInstance } from 'fastify';

/**
 * Events of `app.server` that the app's plugins handle besides requests: upgrades
 * (`@fastify/websocket`, a `ws` server given `app.server`), CONNECT, and Fastify's own
 * `clientErrorHandler`.
 */
const SERVER_EVENTS = ['upgrade', 'connect', 'clientError'] as const;

/**
 * Serves a Fastify app as an FC custom runtime: makes it ready, then listens on the port from
 * `FC_CUSTOM_LISTEN_PORT`, then `FC_SERVER_PORT`, then 9000, on `0.0.0.0`, keep-alive on and
 * no request timeout; answers FC's `POST /initialize` and `GET /pre-stop` (which lets the
 * `fcAsync` plugin's tasks finish, then flushes, within `preStopTimeoutMs`); shuts down
 * gracefully on SIGTERM, ending with `app.close()`. Requests go to Fastify's router through a
 * server of fc-async's own, not `app.server`; its `upgrade`, `connect` and `clientError` events go
 * to the listeners on `app.server` (`@fastify/websocket`'s upgrades), as with `app.listen()`.
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
    return Promise.reject(new TypeError(`Expected \`app\` to be a Fastify instance${nestAppHint(app)}`));
  }
  return listenFc((req, res) => app.routing(req, res), options, {
    app: app.server,
    ready: () => app.ready(),
    close: () => Promise.resolve(app.close()),
  }).then((fc) => {
    // Before any connection is read: this runs in the same turn as the server's 'listening'.
    for (const event of SERVER_EVENTS) forwardEvent(fc.server, app.server as Server, event);
    return fc;
  });
}

/**
 * Passes `event` of `from` on to the listeners of `to`, listening on `from` only while `to` has
 * listeners: Node answers an upgrade as a plain request, and closes a CONNECT, when none listens,
 * which must stay so for an app without WebSocket. Follows listeners added to `to` later, and stops
 * following when `from` closes.
 */
function forwardEvent(from: Server, to: Server, event: (typeof SERVER_EVENTS)[number]): void {
  const forward = (...args: unknown[]) => to.emit(event, ...args);
  const follow = () => {
    const wanted = to.listenerCount(event) > 0;
    const forwarding = from.listeners(event).includes(forward);
    if (wanted && !forwarding) from.on(event, forward);
    else if (!wanted && forwarding) from.off(event, forward);
  };
  // 'newListener' comes before the listener is added: it is counted once the emit is over.
  const added = (name: string | symbol) => {
    if (name === event && !from.listeners(event).includes(forward)) from.on(event, forward);
  };
  const removed = (name: string | symbol) => {
    if (name === event) follow();
  };
  follow();
  to.on('newListener', added);
  to.on('removeListener', removed);
  from.once('close', () => {
    to.off('newListener', added);
    to.off('removeListener', removed);
  });
}
