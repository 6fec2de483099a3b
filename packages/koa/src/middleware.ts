import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createFcRuntime,
  type FcAsyncControls,
  type FcRuntimeOptions,
  getInvocation,
  isAnsweredInFront,
  writeBridgeResponse,
} from '@fc-async/core';
import { answerNullThrows, type KoaErrorEmitter, logKoaErrors } from './errors.js';
import { koaRoute, recordKoaRoutes } from './route.js';

/** The apps whose `error` events fc-async has looked after. */
const logging = new WeakSet<object>();

/**
 * What the middleware reads of a Koa 2/3 context. Structural: no `@types/koa` required.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * const app = new Koa();
 * app.use((ctx) => { const seen: KoaContextLike = ctx; });
 * ```
 */
export interface KoaContextLike {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  originalUrl: string;
  respond?: boolean | undefined;
  app: { callback(): (req: IncomingMessage, res: ServerResponse) => unknown; context: object };
}

/**
 * The middleware `fcAsync()` returns: a Koa 2/3 middleware carrying the async controls
 * (`mode`, `tasks`, `engine`, `drain()`, `close()`).
 *
 * @example
 * ```ts
 * const middleware: FcAsyncMiddleware = fcAsync();
 * await middleware.drain();
 * ```
 */
export interface FcAsyncMiddleware extends FcAsyncControls {
  (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown>;
}

/**
 * fc-async for a Koa app run as an FC custom runtime or custom container. Install it before
 * body parsers, after authentication (docs/deploy.md). Every request gets its invocation
 * context (`getInvocation(ctx)`, `ctx.fc`) from FC's common headers. Async requests: in local
 * mode answered 202 and queued, then replayed through the same app; on FC (platform mode) run
 * through the app, the destination hooks called, and `x-fc-status: 404` set when the invocation
 * failed. Koa answers an error itself (`Internal Server Error`, without the message, for an
 * unexposed one); on its first request the middleware sends the app's `error` events to
 * `options.logger` when the app has no `error` listener of its own (Koa's default one prints the
 * stack on stderr), as `createHandler` does.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { fcAsync, listen } from '@fc-async/koa';
 *
 * const app = new Koa();
 * app.use(fcAsync({ async: { maxAsyncRetryAttempts: 2 } }));
 * app.use((ctx) => { ctx.body = { attempt: ctx.fc?.attempt }; });
 * await listen(app);
 * ```
 */
export function fcAsync(options: FcRuntimeOptions = {}): FcAsyncMiddleware {
  const runtime = createFcRuntime(options);
  const logger = runtime.logger;
  async function fcAsyncMiddleware(ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown> {
    const app = ctx.app;
    adopt(app);
    const answer = await runtime.handle(
      ctx.req,
      { app, listener: () => app.callback(), url: ctx.originalUrl, routeOf: koaRoute },
      ctx.res,
    );
    if (answer === undefined) return runtime.proceed(ctx.req, next);
    // Written before this middleware ran (to `ctx.res`), then passed on: Koa leaves an ended response alone.
    if (isAnsweredInFront(answer)) return;
    ctx.respond = false;
    writeBridgeResponse(ctx.res, answer, ctx.method);
  }
  /** What the middleware sets up on its app, on its first request or when `listen(app)` binds it. */
  function adopt(app: KoaContextLike['app']): void {
    answerNullThrows(app as { middleware?: unknown });
    if (!logging.has(app)) {
      logging.add(app);
      logKoaErrors(app as typeof app & KoaErrorEmitter, () => logger, false);
    }
    if (!Object.hasOwn(app.context, 'fc')) exposeFc(app.context);
    recordKoaRoutes(app);
  }
  binders.set(fcAsyncMiddleware, (app) => {
    adopt(app);
    runtime.bind({ app, listener: () => app.callback(), routeOf: koaRoute });
  });
  return Object.assign(fcAsyncMiddleware, {
    mode: runtime.mode,
    tasks: runtime.tasks,
    engine: runtime.engine,
    drain: runtime.drain,
    close: runtime.close,
  });
}

/** Binds each `fcAsync()` middleware to its app, by the middleware function. */
const binders = new WeakMap<object, (app: KoaContextLike['app']) => void>();

/**
 * Binds the `fcAsync()` middleware among `app.middleware` to it before any request: `listen(app)`
 * calls it, so that a durable backend's recovered tasks run at once instead of waiting for the
 * first request to tell the middleware which app it serves.
 */
export function bindFcAsync(app: { middleware?: unknown }): void {
  if (!Array.isArray(app.middleware)) return;
  for (const fn of app.middleware) binders.get(fn)?.(app as KoaContextLike['app']);
}

function exposeFc(proto: object): void {
  Object.defineProperty(proto, 'fc', {
    configurable: true,
    get(this: object) {
      return getInvocation(this);
    },
  });
}
