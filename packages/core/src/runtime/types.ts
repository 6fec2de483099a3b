import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AsyncEngine, CloseOptions, TaskApi } from '../async/engine.js';
import type { NodeHandler } from '../bridge.js';
import type { FcHandlerOptions } from '../handler.js';
import type { Logger } from '../logger.js';
import type { BridgeResponse } from '../response.js';
import type { RouteOf } from '../tracing/route.js';

/**
 * Options of the custom-runtime middleware (`fcAsync(options)` in every adapter): those of
 * `createHandler` except `textContentTypes` (a custom runtime answers over HTTP, never base64).
 *
 * @example
 * ```ts
 * const onFailure = jsonlDestination('.fc-async/failed.jsonl');
 * const options: FcRuntimeOptions = { async: { maxAsyncRetryAttempts: 2 }, destinations: { onFailure } };
 * ```
 */
export type FcRuntimeOptions = Omit<FcHandlerOptions, 'textContentTypes'>;

/**
 * What the middleware exposes, like the handler of `createHandler`: the mode, local mode's
 * tasks and engine, `drain()` and `close()`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { fcAsync } from '@fc-async/express';
 * const app = express();
 * const middleware = fcAsync();
 * app.use(middleware);
 * process.on('SIGTERM', () => void middleware.close({ timeoutMs: 5000 }));
 * ```
 */
export interface FcAsyncControls {
  /** `local` (fc-async queues async requests) or `platform` (FC does). */
  readonly mode: 'local' | 'platform';
  /** Local mode's tasks; in platform mode every call throws `NotAvailableInPlatformMode`. */
  readonly tasks: TaskApi;
  /** Local mode's engine; `undefined` in platform mode. */
  readonly engine: AsyncEngine | undefined;
  /** Resolves when no async task is queued, running or being delivered. */
  drain(): Promise<void>;
  /**
   * Stops accepting async requests (503), settles every task by `timeoutMs` (default 30 s), then
   * flushes its spans and releases what the process kept of it. Idempotent.
   */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * How the middleware reaches the app it runs in: queued (local) and platform async invocations
 * are replayed through the whole app, and pass the middleware straight through then.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * const app = new Koa();
 * app.use(async (ctx) => {
 *   const target: ReplayTarget = { app, listener: () => app.callback(), url: ctx.originalUrl };
 * });
 * ```
 */
export interface ReplayTarget {
  /** The app: one middleware serves one app, and `listen(app)` finds the middleware by it. */
  app: object;
  /** The whole app as a Node request listener; called once, on the first request. */
  listener: () => NodeHandler;
  /** The URL as the app first saw it (Express's `req.originalUrl` under a mount path). @default req.url */
  url?: string | undefined;
  /** The route the framework matched for a request, read when it finished: names SERVER and attempt spans. */
  routeOf?: RouteOf | undefined;
}

/**
 * The framework-independent part of the custom-runtime middleware, one per `fcAsync()` call.
 *
 * @example
 * ```ts
 * import http from 'node:http';
 * declare const appListener: http.RequestListener;
 * const runtime = createFcRuntime();
 * const server = http.createServer(async (req, res) => {
 *   const answer = await runtime.handle(req, { app: server, listener: () => appListener }, res);
 *   if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
 *   else runtime.proceed(req, () => appListener(req, res));
 * });
 * ```
 */
export interface FcRuntime extends FcAsyncControls {
  /**
   * The logger in force: `options.logger`, else (an app entry loaded by `fc-async dev`) the
   * emulator's log, else JSON lines on stdout and stderr. Adapters log the app's errors through it.
   */
  readonly logger: Logger;
  /**
   * Reads FC's common headers into the invocation context (`getInvocation(req)`) and decides:
   * `undefined` means "continue to the app" (sync invocations, replays); otherwise the response
   * to write with {@link writeBridgeResponse}: 202 for an accepted async request in local mode,
   * the app's replayed response in platform mode (marked for `x-fc-status: 404` when it failed),
   * or an error `{ code, message }`; for an async request whose response a middleware in front
   * already ended (then passed it on), an answer `isAnsweredInFront()` tells, which
   * `writeBridgeResponse()` writes nothing for: pass nothing on. Never rejects. `res`: the response the app writes; the SERVER
   * span of a request passed on to the app ends when it finishes (ERROR when the connection closes
   * first). Without `res`, only requests answered here get a span.
   */
  handle(req: IncomingMessage, target: ReplayTarget, res?: ServerResponse): Promise<BridgeResponse | undefined>;
  /**
   * Continues to the app (`next()`), inside the request's SERVER span when one records, so that
   * the app's own spans nest under it. Call it where the middleware would call `next()` after
   * {@link FcRuntime.handle} answered `undefined`.
   */
  proceed<T>(req: IncomingMessage, next: () => T): T;
  /**
   * Binds the runtime to its app ahead of the first request (a plugin that knows its app up
   * front): tasks a persistent backend recovers can replay at once. Throws an `FcAsyncError`
   * for a second, different app.
   */
  bind(target: ReplayTarget): void;
}
