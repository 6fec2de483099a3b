import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createFcRuntime,
  type FcAsyncControls,
  FcAsyncError,
  type FcRuntimeOptions,
  getInvocation,
  jsonResponse,
  writeBridgeResponse,
} from '@fc-async/core';
import { expressRoute } from './route.js';

/** What the middleware reads of an Express request: `req.app` and `req.originalUrl`. */
type ExpressRequestLike = IncomingMessage & { app?: ExpressAppLike; originalUrl?: string };

interface ExpressAppLike {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): unknown;
  parent?: ExpressAppLike;
  request?: object;
}

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
 * failed.
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
  function fcAsyncMiddleware(req: ExpressRequestLike, res: ServerResponse, next: (error?: unknown) => void): void {
    const app = req.app;
    if (typeof app !== 'function') {
      next(new FcAsyncError('NotAnExpressApp', 'fcAsync() from @fc-async/express runs inside an Express app'));
      return;
    }
    if (app.request && !Object.hasOwn(app.request, 'fc')) exposeFc(app.request);
    let root = app;
    while (root.parent) root = root.parent;
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

/** The app as a Node listener for replays: an error it does not handle fails the attempt. */
function replayListener(app: ExpressAppLike) {
  return function expressReplay(req: IncomingMessage, res: ServerResponse) {
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
