import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createFcRuntime,
  errorResponse,
  type FcAsyncControls,
  FcAsyncError,
  type FcRuntimeOptions,
  getInvocation,
  type Logger,
  writeBridgeResponse,
} from '@fc-async/core';
import { finish } from './final.js';
import { rejectionSettler } from './rejections.js';
import { expressRoute, stackOf } from './route.js';

/** What the middleware reads of an Express request: `req.app` and `req.originalUrl`. */
type ExpressRequestLike = IncomingMessage & { app?: ExpressAppLike; originalUrl?: string };

interface ExpressAppLike {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): unknown;
  parent?: ExpressAppLike;
  request?: object;
  use?(
    handler: (error: unknown, req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void) => void,
  ): unknown;
}

/** The root apps that have fc-async's final error handler. */
const withFinalHandler = new WeakSet<object>();

/**
 * The middleware `fcAsync()` returns: an Express 4/5 middleware carrying the async controls
 * (`mode`, `tasks`, `engine`, `drain()`, `close()`).
 *
 * @example
 * ```ts
 * const middleware: FcAsyncMiddleware = fcAsync();
 * await middleware.drain();
 * ```
 */
export interface FcAsyncMiddleware extends FcAsyncControls {
  (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
}

/**
 * fc-async for an Express app run as an FC custom runtime or custom container. Install it
 * before body parsers, after authentication (docs/deploy.md). Every request gets its invocation
 * context (`getInvocation(req)`, `req.fc`) from FC's common headers. Async requests: in local
 * mode answered 202 and queued, then replayed through the same app; on FC (platform mode) run
 * through the app, the destination hooks called, and `x-fc-status: 404` set when the invocation
 * failed. On its first request it appends an error middleware to the root app, as
 * `createHandler` supplies the final handler: an error no error middleware of the app answers is
 * logged through `options.logger` and answered a generic 500 (Express's own final handler sends
 * the stack outside production); a 4xx error keeps its status, with a stable code. A replay's error
 * gets the same answer, so a task's record reads as with `createHandler` (`The function answered
 * HTTP 500`) and the error's message stays in the log.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { fcAsync, listen } from '@fc-async/express';
 *
 * const app = express();
 * app.use(fcAsync({ async: { maxAsyncRetryAttempts: 2 } }));
 * app.post('/transcode', express.json(), (req, res) => res.json({ attempt: req.fc?.attempt }));
 * await listen(app);
 * ```
 */
export function fcAsync(options: FcRuntimeOptions = {}): FcAsyncMiddleware {
  const runtime = createFcRuntime(options);
  const logger = runtime.logger;
  function fcAsyncMiddleware(req: ExpressRequestLike, res: ServerResponse, next: (error?: unknown) => void): void {
    const app = req.app;
    if (typeof app !== 'function') {
      const error = new FcAsyncError('NotAnExpressApp', 'fcAsync() from @fc-async/express runs inside an Express app');
      // A plain `http` server passes no `next`: answered here rather than thrown out of the request.
      if (typeof next === 'function') next(error);
      else writeBridgeResponse(res, errorResponse(error, logger), req.method ?? 'GET');
      return;
    }
    if (app.request && !Object.hasOwn(app.request, 'fc')) exposeFc(app.request);
    let root = app;
    while (root.parent) root = root.parent;
    rejectionSettler(root)();
    addFinalHandler(root, logger);
    runtime
      .handle(
        req,
        { app: root, listener: () => replayListener(root, logger), url: req.originalUrl, routeOf: expressRoute },
        res,
      )
      .then((answer) => {
        if (answer === undefined) runtime.proceed(req, next);
        // An answer a middleware in front already sent (isAnsweredInFront) writes nothing, and goes no further.
        else writeBridgeResponse(res, answer, req.method ?? 'GET');
      })
      .catch(next);
  }
  binders.set(fcAsyncMiddleware, (app) => {
    // The root a request binds to: an app mounted in another one replays through the outer one.
    let root = app;
    while (root.parent) root = root.parent;
    if (app.request && !Object.hasOwn(app.request, 'fc')) exposeFc(app.request);
    // The final error middleware comes with the first request, as before: until then listen() is
    // the final handler, with its own logger; a replay ends in `finish` either way.
    runtime.bind({ app: root, listener: () => replayListener(root, logger), routeOf: expressRoute });
  });
  return Object.assign(fcAsyncMiddleware, {
    mode: runtime.mode,
    tasks: runtime.tasks,
    engine: runtime.engine,
    drain: runtime.drain,
    close: runtime.close,
  }) as FcAsyncMiddleware;
}

/** Binds each `fcAsync()` middleware to its root app, by the middleware function. */
const binders = new WeakMap<object, (root: ExpressAppLike) => void>();

/**
 * Binds the `fcAsync()` middleware of `app`'s own stack to it before any request: `listen(app)`
 * calls it, so that a durable backend's recovered tasks run at once instead of waiting for the
 * first request to tell the middleware which app it serves.
 */
export function bindFcAsync(app: ExpressAppLike): void {
  const stack = stackOf(app as Parameters<typeof stackOf>[0]);
  if (!Array.isArray(stack)) return;
  for (const layer of stack as { handle?: unknown }[]) {
    const bind = typeof layer?.handle === 'function' ? binders.get(layer.handle) : undefined;
    bind?.(app);
  }
}

/** The app's last error middleware, added once per root app. */
function addFinalHandler(root: ExpressAppLike, logger: Logger): void {
  if (withFinalHandler.has(root) || typeof root.use !== 'function') return;
  withFinalHandler.add(root);
  // Last in the root's stack, the app's own error middleware all comes first.
  root.use(finalErrorHandler(logger));
}

/**
 * The app's last error middleware: what `createHandler`'s final handler answers, for a request as
 * it arrived and for a replay alike, so that a task's record is the same with either entry point
 * (`The function answered HTTP 500`, as FC's would read: it sees the same answer) and the thrown
 * message stays in the log.
 */
function finalErrorHandler(logger: Logger) {
  return function fcAsyncFinalHandler(
    error: unknown,
    req: IncomingMessage,
    res: ServerResponse,
    _next: (error?: unknown) => void,
  ): void {
    finish(error, req, res, logger);
  };
}

/** The app as a Node listener for replays, ending as `createHandler`'s does (an error a route added later throws too). */
function replayListener(app: ExpressAppLike, logger: Logger) {
  return function expressReplay(req: IncomingMessage, res: ServerResponse) {
    app(req, res, (error) => finish(error, req, res, logger));
  };
}

function exposeFc(proto: object): void {
  Object.defineProperty(proto, 'fc', {
    configurable: true,
    get(this: object) {
      return getInvocation(this);
    },
  });
}
