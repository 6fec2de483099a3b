import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  checkHandlerOptions,
  createFcHandler,
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
} from '@fc-async/core';
import type {} from 'koa';
import { answerNullThrows, logKoaErrors } from './errors.js';
import { koaRoute, recordKoaRoutes } from './route.js';

export type { FcAsyncControls, FcListenOptions, FcRuntimeOptions, FcServer } from '@fc-async/core';
export {
  type FcHandler,
  type FcHandlerOptions,
  getInvocation,
  type Invocation,
  isMiddlewareReplay,
} from '@fc-async/core';
export { listen } from './listen.js';
export { type FcAsyncMiddleware, fcAsync, type KoaContextLike } from './middleware.js';

// ExtendableContext, which every context type includes, `new Koa<State, Context>()`'s own too
// (a custom context type replaces DefaultContext).
declare module 'koa' {
  interface ExtendableContext {
    /** The FC invocation context (fc-async); the same as `getInvocation(ctx)`. */
    readonly fc: Invocation | undefined;
  }
}

/**
 * What the adapter needs of a Koa 2 or 3 app. Structural; but `ctx.fc` is typed by augmenting
 * `@types/koa`, which a project type-checking libraries (`skipLibCheck: false`) then needs installed.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * const app: KoaLike = new Koa();
 * export const handler = createHandler(app);
 * ```
 */
export interface KoaLike {
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
  context: object;
  on(event: 'error', listener: (error: unknown, ctx?: unknown) => void): unknown;
  listenerCount(event: string): number;
}

/**
 * Runs a Koa 2 or 3 app as an FC HTTP function, for FC 3.0's `handler(event, context)` and FC
 * 2.0's `handler(req, resp, context)`. `ctx.fc` is defined on the app's context prototype. When
 * the app has no `error` listener, one is added that logs through `options.logger` (Koa's own
 * response to an error, a generic 500 for unexposed errors, is kept). Koa composes the
 * middleware on the first request, so middleware added after this call still runs.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { createHandler, getInvocation } from '@fc-async/koa';
 *
 * const app = new Koa({ proxy: true });
 * app.use((ctx) => { ctx.body = { requestId: getInvocation(ctx)?.requestId }; });
 * export const handler = createHandler(app);
 * ```
 */
export function createHandler(app: KoaLike, options: FcHandlerOptions = {}): FcHandler {
  if (!app || typeof app.callback !== 'function') {
    throw new TypeError('Expected `app` to be a Koa application (with a callback() method)');
  }
  checkHandlerOptions(options, 'handler');
  if (!Object.hasOwn(app.context, 'fc')) {
    Object.defineProperty(app.context, 'fc', {
      configurable: true,
      get(this: object) {
        return getInvocation(this);
      },
    });
  }
  recordKoaRoutes(app);
  let listener: ((req: IncomingMessage, res: ServerResponse) => unknown) | undefined;
  const handler = createFcHandler(
    function koaListener(req, res) {
      if (listener === undefined) {
        answerNullThrows(app as KoaLike & { middleware?: unknown });
        listener = app.callback();
      }
      return listener(req, res);
    },
    options,
    { routeOf: koaRoute },
  );
  // Once the handler exists (its options may be refused): its logger is the options', else the
  // emulator's (an entry of `fc-async dev`), else the console.
  logKoaErrors(app, () => handler.logger, true);
  return handler;
}
