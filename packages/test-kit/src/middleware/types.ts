import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { FcAsyncControls, FcListenOptions, FcRuntimeOptions, FcServer, Invocation } from '@fc-async/core';

/** What a route of the shared route set sees, read the framework's own way. */
export interface RouteRequest {
  /** The invocation as the framework exposes it: `req.fc`, `ctx.fc`, `request.fc`. */
  fc: Invocation | undefined;
  /** `getInvocation()` of the framework's own request object (`req`, `ctx`, `request`). */
  invocation: Invocation | undefined;
  query: Record<string, string | undefined>;
  headers: IncomingHttpHeaders;
  /** The body the framework parsed (JSON), `undefined` without one. */
  body: unknown;
  socket: Socket;
}

/** What a route answers: a string is sent as text, anything else as JSON. */
export interface RouteReply {
  status?: number;
  body: unknown;
}

/** One route of the shared route set, written once and installed in every framework. */
export interface Route {
  method: 'GET' | 'POST';
  /** With `:name` parameters, the syntax all three routers share. */
  path: string;
  /** A synchronous throw stays synchronous for the framework. */
  handle(request: RouteRequest): RouteReply | Promise<RouteReply>;
}

/** The app a case asks for. */
export interface AppSpec {
  /** Options of the app's `fcAsync` middleware/plugin, installed first; omitted: no `fcAsync`. */
  fcAsync?: FcRuntimeOptions;
  routes: Route[];
  /**
   * Installed before `fcAsync`: `header` sets `x-upstream: kept`; `body-parser` reads the body
   * (Express's `express.json()`, a Koa middleware draining `ctx.req`, a Fastify `onRequest`
   * hook draining `request.raw`); `auth` answers 401 unless `authorized(req)` (a middleware,
   * a Fastify `onRequest` hook); `answered` answers `503 { code: 'Busy' }` and passes the request
   * on all the same (Express's `next()`, Koa's on `ctx.res` then `next()`, a Fastify hook's
   * `reply.send()` then `done()`).
   */
  before?: 'header' | 'body-parser' | 'auth' | 'answered';
  /** Runs when the app itself is closed (only where {@link MiddlewareTarget.closesApp}). */
  onClose?: () => void;
}

/** An app built by a target. */
export interface MiddlewareApp {
  /** The framework's own app, as the adapter's `listen()` takes it. */
  app: unknown;
  /** The controls of its `fcAsync` (the middleware itself, or Fastify's `app.fcAsync`). */
  controls: FcAsyncControls | undefined;
  /** Serves the app on a loopback port; `close()` closes `fcAsync`, then the server. */
  serve(): Promise<{ url: string; close(): Promise<void> }>;
  /** The adapter's `listen(app, options)`. */
  listen(options: FcListenOptions): Promise<FcServer>;
}

/** One framework major, with the adapter's `fcAsync` and `listen()`. */
export interface MiddlewareTarget {
  name: string;
  build(spec: AppSpec): Promise<MiddlewareApp>;
  /** Whether the framework has an app to close, which `listen()` closes on shutdown. */
  closesApp: boolean;
}
