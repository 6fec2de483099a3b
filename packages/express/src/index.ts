import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  checkHandlerOptions,
  createFcHandler,
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
  nestAppHint,
} from '@fc-async/core';
import { finish } from './final.js';
import { rejectionSettler } from './rejections.js';
import { expressRoute } from './route.js';

export type { FcAsyncControls, FcListenOptions, FcRuntimeOptions, FcServer } from '@fc-async/core';
export {
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
  isMiddlewareReplay,
} from '@fc-async/core';
export { listen } from './listen.js';
export { type FcAsyncMiddleware, fcAsync } from './middleware.js';

/**
 * What the adapter needs of an Express app: callable as `app(req, res, done)`, as Express 4 and 5
 * apps are. Structural, so this package's types compile without `@types/express`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * const app: ExpressLike = express();
 * export const handler = createHandler(app);
 * ```
 */
export interface ExpressLike {
  (req: IncomingMessage, res: ServerResponse, done: (error?: unknown) => void): unknown;
  request?: object;
}

declare global {
  namespace Express {
    interface Request {
      /** The FC invocation context (fc-async); the same as `getInvocation(req)`. */
      readonly fc: Invocation | undefined;
    }
  }
}

/**
 * Runs an Express 4 or 5 app as an FC HTTP function, for FC 3.0's `handler(event, context)` and
 * FC 2.0's `handler(req, resp, context)`. The app is not changed, except that `req.fc` is
 * defined on its request prototype and, on Express 4, a rejected `async` handler goes to the
 * error middleware as on Express 5 (Express 4 leaves it unhandled, and Node exits). Errors the
 * app's own error middleware does not handle are logged through `options.logger` and answer a
 * generic 500 (a 4xx error keeps its status); unmatched routes answer 404.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createHandler, getInvocation } from '@fc-async/express';
 *
 * const app = express();
 * app.set('trust proxy', true);
 * app.get('/hello', (req, res) => res.json({ requestId: getInvocation(req)?.requestId }));
 * export const handler = createHandler(app);
 * ```
 */
export function createHandler(app: ExpressLike, options: FcHandlerOptions = {}): FcHandler {
  if (typeof app !== 'function') {
    throw new TypeError(`Expected \`app\` to be an Express application, got \`${typeof app}\`${nestAppHint(app)}`);
  }
  checkHandlerOptions(options, 'handler');
  if (app.request && !Object.hasOwn(app.request, 'fc')) {
    Object.defineProperty(app.request, 'fc', {
      configurable: true,
      get(this: object) {
        return getInvocation(this);
      },
    });
  }
  const settle = rejectionSettler(app);
  // The handler's logger: the options', else the emulator's (an entry of `fc-async dev`), else the console.
  const handler: FcHandler = createFcHandler(
    function expressListener(req, res) {
      settle();
      app(req, res, (error) => finish(error, req, res, handler.logger));
    },
    options,
    { routeOf: expressRoute },
  );
  return handler;
}
