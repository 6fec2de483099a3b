import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  checkHandlerOptions,
  createFcHandler,
  FcAsyncError,
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
  nestAppHint,
} from '@fc-async/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { genericErrorHandler, hideDefaultErrors, type SeenError, seeError } from './errors.js';
import { fastifyRoute, recordFastifyRoutes } from './route.js';

export type { FcAsyncControls, FcListenOptions, FcRuntimeOptions, FcServer } from '@fc-async/core';
export {
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
  isMiddlewareReplay,
} from '@fc-async/core';
export { listen } from './listen.js';
export { fcAsync } from './plugin.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The FC invocation context (fc-async); the same as `getInvocation(request)`. */
    readonly fc: Invocation | undefined;
  }
}

/**
 * What the adapter needs of a Fastify 4 or 5 instance.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * const app: FastifyLike = Fastify();
 * export const handler = createHandler(app);
 * ```
 */
export type FastifyLike = Pick<
  FastifyInstance,
  'ready' | 'after' | 'decorateRequest' | 'hasRequestDecorator' | 'setErrorHandler' | 'errorHandler' | 'addHook'
> & {
  routing(req: IncomingMessage, res: ServerResponse): void;
};

/**
 * Runs a Fastify 4 or 5 app as an FC HTTP function, for FC 3.0's `handler(event, context)` and FC
 * 2.0's `handler(req, resp, context)`. Requests go straight to Fastify's router (no
 * `inject()`); the app is made ready on the first invocation. Adds `request.fc`. When the app
 * keeps Fastify's default error handler, it is replaced by one that logs 5xx errors through
 * `options.logger` and answers a generic 500 (Fastify's default would echo the error message);
 * an error handler you set is kept. Call before `app.ready()` and `app.listen()`: Fastify takes no
 * hooks once it booted, so an app already ready is refused with an `FcAsyncError`
 * (`FastifyAlreadyReady`) before anything of it is changed.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createHandler } from '@fc-async/fastify';
 *
 * const app = Fastify({ trustProxy: true });
 * app.get('/hello', async (request) => ({ requestId: request.fc?.requestId }));
 * export const handler = createHandler(app);
 * ```
 */
export function createHandler(app: FastifyLike, options: FcHandlerOptions = {}): FcHandler {
  if (!app || typeof app.routing !== 'function' || typeof app.ready !== 'function' || typeof app.after !== 'function') {
    throw new TypeError(`Expected \`app\` to be a Fastify instance${nestAppHint(app)}`);
  }
  checkHandlerOptions(options, 'handler');
  assertNotBooted(app);
  const ownHandler = app.errorHandler?.name !== 'defaultErrorHandler';
  // Routes Fastify had already loaded when the generic error handler was set (inside a plugin
  // registered with `await`, or before `await app.after()`) keep the default one: its answer is
  // hidden as the plugin hides it, by what an onError hook sees (whatever a response schema makes of it).
  const errorsSeen = new WeakMap<IncomingMessage, SeenError>();
  const handler = createFcHandler(
    function fastifyListener(req, res) {
      if (!ownHandler) hideDefaultErrors(req, res, handler.logger, () => errorsSeen.get(req));
      app.routing(req, res);
    },
    options,
    { ready: () => app.ready(), routeOf: fastifyRoute },
  );
  // The app is changed only once the handler exists (its options may be refused). Its logger: the
  // options', else the emulator's (an entry of `fc-async dev`), else the console.
  if (!ownHandler) {
    app.setErrorHandler(genericErrorHandler(() => handler.logger));
    app.addHook('onError', function fcAsyncOnError(request, reply, error, done) {
      errorsSeen.set(request.raw, seeError(reply, error));
      done();
    });
  }
  // The app's own fcAsync plugin (the custom runtime's app file, served by `fc-async dev`) has it already.
  if (!app.hasRequestDecorator('fc'))
    app.decorateRequest('fc', {
      getter(this: FastifyRequest) {
        return getInvocation(this.raw);
      },
    } as never);
  if (options.tracing?.enabled !== false) recordFastifyRoutes(app);
  return handler;
}

/**
 * Refuses an app that `ready()` or `listen()` already booted, before any of it is changed: its
 * hooks would be refused by avvio ("Root plugin has already booted") or by Fastify ("already
 * listening"), neither saying what to do. `after()` is what `addHook` queues its work with: on an
 * app still loading it queues a no-op (of no arguments, which passes an earlier plugin's error on).
 */
function assertNotBooted(app: FastifyLike): void {
  try {
    app.after(() => {});
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'AVV_ERR_ROOT_PLG_BOOTED') throw error;
    throw new FcAsyncError(
      'FastifyAlreadyReady',
      'The Fastify app is already ready (app.ready() or app.listen() ran), and Fastify then takes no hooks: call createHandler(app), or hand the app to `fc-async dev`, before readying it; fc-async makes the app ready on its first invocation',
      { cause: error },
    );
  }
}
