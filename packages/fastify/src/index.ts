import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createConsoleLogger,
  createFcHandler,
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
  type Logger,
} from '@fc-async/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fastifyRoute, recordFastifyRoutes } from './route.js';

export type { FcAsyncControls, FcListenOptions, FcRuntimeOptions, FcServer } from '@fc-async/core';
export { type FcHandler, type FcHandlerOptions, getInvocation, type Invocation } from '@fc-async/core';
export { listen } from './listen.js';
export { fcAsync } from './plugin.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The FC invocation context (fc-async); the same as `getInvocation(request)`. */
    readonly fc: Invocation | undefined;
  }
}

/** What the adapter needs of a Fastify 4 or 5 instance. */
export type FastifyLike = Pick<
  FastifyInstance,
  'ready' | 'decorateRequest' | 'setErrorHandler' | 'errorHandler' | 'addHook'
> & {
  routing(req: IncomingMessage, res: ServerResponse): void;
};

/**
 * Runs a Fastify 4 or 5 app as an FC HTTP function, for FC 3.0's `handler(event, context)` and FC
 * 2.0's `handler(req, resp, context)`. Requests go straight to Fastify's router (no
 * `inject()`); the app is made ready on the first invocation. Adds `request.fc`. When the app
 * keeps Fastify's default error handler, it is replaced by one that logs 5xx errors through
 * `options.logger` and answers a generic 500 (Fastify's default would echo the error message);
 * an error handler you set is kept. Call before `app.ready()`.
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
  if (!app || typeof app.routing !== 'function' || typeof app.ready !== 'function') {
    throw new TypeError('Expected `app` to be a Fastify instance');
  }
  const logger = options.logger ?? createConsoleLogger();
  if (app.errorHandler?.name === 'defaultErrorHandler') app.setErrorHandler(genericErrorHandler(logger));
  app.decorateRequest('fc', {
    getter(this: FastifyRequest) {
      return getInvocation(this.raw);
    },
  } as never);
  if (options.tracing?.enabled !== false) recordFastifyRoutes(app);
  return createFcHandler(
    function fastifyListener(req, res) {
      app.routing(req, res);
    },
    { ...options, logger },
    { ready: () => Promise.resolve(app.ready()), routeOf: fastifyRoute },
  );
}

function genericErrorHandler(logger: Logger) {
  return function fcAsyncErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      reply.code(status).send(error);
      return;
    }
    logger.error('fastify app failed', { error, requestId: getInvocation(request.raw)?.requestId });
    reply.code(500).send({ code: 'InternalError', message: 'Internal Server Error' });
  };
}
