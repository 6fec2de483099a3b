import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  checkHandlerOptions,
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
  checkHandlerOptions(options, 'handler');
  const logger = options.logger ?? createConsoleLogger();
  const ownHandler = app.errorHandler?.name !== 'defaultErrorHandler';
  if (!ownHandler) app.setErrorHandler(genericErrorHandler(logger));
  app.decorateRequest('fc', {
    getter(this: FastifyRequest) {
      return getInvocation(this.raw);
    },
  } as never);
  if (options.tracing?.enabled !== false) recordFastifyRoutes(app);
  return createFcHandler(
    function fastifyListener(req, res) {
      if (!ownHandler) hideDefaultErrors(req, res, logger);
      app.routing(req, res);
    },
    { ...options, logger },
    { ready: () => app.ready(), routeOf: fastifyRoute },
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

/**
 * Routes Fastify had already loaded when `createHandler` set the generic error handler (inside a
 * plugin registered with `await`, or before `await app.after()`) keep Fastify's default one,
 * which sends the error's message: its 5xx answer becomes the generic 500 here, the error logged.
 * The head of a 5xx is held until its body is known, so that its content-length is the new one.
 */
function hideDefaultErrors(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  const { writeHead, write, end } = res;
  let held: unknown[] | undefined;
  let through = false;
  const flush = (self: ServerResponse) => {
    const args = held;
    held = undefined;
    through = true;
    if (args) writeHead.apply(self, args as Parameters<typeof writeHead>);
  };
  res.writeHead = function holdErrorHead(this: ServerResponse, ...args: unknown[]) {
    if (!through && Number(args[0]) >= 500) {
      held = args;
      return this;
    }
    return writeHead.apply(this, args as Parameters<typeof writeHead>);
  } as typeof res.writeHead;
  res.write = function writeAfterHead(this: ServerResponse, ...args: unknown[]) {
    flush(this);
    return write.apply(this, args as Parameters<typeof write>);
  } as typeof res.write;
  res.end = function endWithoutMessage(this: ServerResponse, ...args: unknown[]) {
    const message = held ? defaultErrorMessage(args[0]) : undefined;
    if (held && message !== undefined) {
      logger.error('fastify app failed', { error: message, requestId: getInvocation(req)?.requestId });
      args[0] = GENERIC_500;
      held = withContentLength(held, GENERIC_500.length);
    }
    flush(this);
    return end.apply(this, args as Parameters<typeof end>);
  } as typeof res.end;
}

/** `writeHead`'s arguments with the headers object's content-length set to `length`. */
function withContentLength(args: unknown[], length: number): unknown[] {
  const at = args.findIndex((a, i) => i > 0 && typeof a === 'object' && a !== null && !Array.isArray(a));
  if (at < 0) return args;
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args[at] as Record<string, unknown>)) {
    if (name.toLowerCase() !== 'content-length') headers[name] = value;
  }
  headers['content-length'] = String(length);
  return args.map((a, i) => (i === at ? headers : a));
}

const GENERIC_500 = JSON.stringify({ code: 'InternalError', message: 'Internal Server Error' });

/** The message of Fastify's default error answer (`{ statusCode, code?, error, message }`), if `body` is one. */
function defaultErrorMessage(body: unknown): string | undefined {
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString());
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const o = parsed as Record<string, unknown>;
  const keys = Object.keys(o).every((k) => k === 'statusCode' || k === 'code' || k === 'error' || k === 'message');
  return keys && typeof o.statusCode === 'number' && typeof o.error === 'string' && typeof o.message === 'string'
    ? o.message
    : undefined;
}
