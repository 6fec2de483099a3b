import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createConsoleLogger,
  createFcRuntime,
  type FcAsyncControls,
  FcAsyncError,
  type FcRuntimeOptions,
  getInvocation,
  jsonResponse,
  type Logger,
  writeBridgeResponse,
} from '@fc-async/core';
import { finish } from './final.js';
import { rejectionSettler } from './rejections.js';
import { expressRoute } from './route.js';

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

/** The requests fc-async runs through the app itself (local replays, platform mode's collecting runs). */
const replays = new WeakSet<object>();
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
 * the stack outside production); a 4xx error keeps its status, with a stable code.
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
  const logger = options.logger ?? createConsoleLogger();
  function fcAsyncMiddleware(req: ExpressRequestLike, res: ServerResponse, next: (error?: unknown) => void): void {
    const app = req.app;
    if (typeof app !== 'function') {
      next(new FcAsyncError('NotAnExpressApp', 'fcAsync() from @fc-async/express runs inside an Express app'));
      return;
    }
    if (app.request && !Object.hasOwn(app.request, 'fc')) exposeFc(app.request);
    let root = app;
    while (root.parent) root = root.parent;
    rejectionSettler(root)();
    if (!withFinalHandler.has(root) && typeof root.use === 'function') {
      withFinalHandler.add(root);
      // Last in the root's stack, the app's own error middleware all comes first.
      root.use(finalErrorHandler(logger, runtime.mode));
    }
    runtime
      .handle(
        req,
        { app: root, listener: () => replayListener(root), url: req.originalUrl, routeOf: expressRoute },
        res,
      )
      .then((answer) => {
        if (answer === undefined) runtime.proceed(req, next);
        else writeBridgeResponse(res, answer, req.method ?? 'GET');
      })
      .catch(next);
  }
  return Object.assign(fcAsyncMiddleware, {
    mode: runtime.mode,
    tasks: runtime.tasks,
    engine: runtime.engine,
    drain: runtime.drain,
    close: runtime.close,
  }) as FcAsyncMiddleware;
}

/**
 * The app's last error middleware: a request as it arrived gets what `createHandler`'s final
 * handler answers; a replay's error goes on to {@link replayListener}, where it fails the attempt
 * (logged here in local mode, where the queue only records its message; platform mode logs it).
 */
function finalErrorHandler(logger: Logger, mode: FcAsyncControls['mode']) {
  return function fcAsyncFinalHandler(
    error: unknown,
    req: IncomingMessage,
    res: ServerResponse,
    next: (error?: unknown) => void,
  ): void {
    if (!replays.has(req)) {
      finish(error, req, res, logger);
      return;
    }
    if (mode === 'local') logger.error('express app failed', { error, requestId: getInvocation(req)?.requestId });
    next(error);
  };
}

/** The app as a Node listener for replays: an error it does not handle fails the attempt. */
function replayListener(app: ExpressAppLike) {
  return function expressReplay(req: IncomingMessage, res: ServerResponse) {
    replays.add(req);
    app(req, res, (error) => {
      if (error) res.destroy(error instanceof Error ? error : new Error(String(error)));
      else {
        const path = (req.url ?? '/').split('?')[0];
        writeBridgeResponse(
          res,
          jsonResponse(404, { code: 'NotFound', message: `Cannot ${req.method} ${path}` }),
          'GET',
        );
      }
    });
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
