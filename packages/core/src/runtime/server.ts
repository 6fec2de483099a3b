import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveMode } from '../async/options.js';
import type { NodeHandler } from '../bridge.js';
import { FcAsyncError } from '../errors.js';
import { getInvocation } from '../invocation.js';
import { createConsoleLogger } from '../logger.js';
import { runPreStopHooks, within } from './hooks.js';
import { answerLifecycle, lifecyclePath } from './lifecycle.js';
import { type FcListenOptions, resolveListenOptions } from './options.js';
import { abortPlatformCalls, enginesToStart, flushRuntimeSpans, isAsyncForApp, runtimesFor } from './runtime.js';
import { FC_STATUS_HEADER } from './write.js';

/**
 * A listening custom-runtime server, as `listen(app)` resolves it.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { listen } from '@fc-async/express';
 * const app = express();
 * const fc = await listen(app, { port: 0 });
 * console.log(`http://127.0.0.1:${fc.port}`);
 * await fc.close();
 * ```
 */
export interface FcServer {
  /** The Node server (timeouts already set for long invocations). */
  readonly server: Server;
  /** The port actually bound. */
  readonly port: number;
  readonly host: string;
  /** What `GET /pre-stop` does: let async tasks finish, then run pre-stop hooks, within the budget. Once. */
  preStop(): Promise<void>;
  /** What a signal does, without exiting: stop accepting, finish in-flight requests, pre-stop, close. Once. */
  close(): Promise<void>;
}

/**
 * What an adapter adds: the app (to find its middleware), readiness, and its own close.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * const app = Fastify();
 * await listenFc((req, res) => app.routing(req, res), {}, {
 *   app: app.server,
 *   ready: () => app.ready(),
 *   close: () => app.close(),
 * });
 * ```
 */
export interface FcServerHooks {
  /** The app whose `fcAsync` middleware's backend listening waits for, and pre-stop drains. */
  app?: object;
  /** Awaited before listening (Fastify's `ready()`, a thenable). */
  ready?: () => PromiseLike<unknown>;
  /** Awaited at the end of a graceful shutdown (Fastify's `close()`). */
  close?: () => Promise<unknown>;
}

/**
 * A second SIGINT/SIGTERM this soon after the first is the same one told twice (a Ctrl-C reaches
 * every process of the group, and a runner such as tsx or `npm start` passes it on too); a later
 * one quits at once.
 */
const SAME_SIGNAL_MS = 500;

/** Keep idle connections from FC's gateway open long enough never to race a reused one. */
const KEEP_ALIVE_TIMEOUT_MS = 600_000;

/**
 * Serves a Node request listener as an FC custom runtime: listens on `0.0.0.0` and the port FC
 * gives, with keep-alive on and no request timeout (an async invocation may run 24 h; FC
 * enforces the function's own timeout); answers FC's `POST /initialize`, `GET /pre-stop` and
 * `GET /pre-freeze`; shuts down gracefully on SIGTERM and SIGINT. Every adapter's `listen(app)`
 * calls it. It listens once the async backend of the app's `fcAsync` middleware (and of any
 * local-mode one not bound to an app yet) is up, and rejects with the backend's error when it
 * does not start; `POST /initialize` answers 500 while it is not up.
 *
 * @example
 * ```ts
 * const fc = await listenFc((req, res) => res.end('ok'), { port: 9000 });
 * ```
 */
export async function listenFc(
  listener: NodeHandler,
  options: FcListenOptions = {},
  hooks: FcServerHooks = {},
): Promise<FcServer> {
  if (typeof listener !== 'function') {
    throw new TypeError(`Expected \`listener\` to be a request listener function, got \`${typeof listener}\``);
  }
  const o = resolveListenOptions(options, process.env);
  const onFc = resolveMode('auto', options.env ?? process.env) === 'platform';
  const logger = o.logger ?? createConsoleLogger();
  const active = new Set<ServerResponse>();
  let idle: (() => void) | undefined;
  let shuttingDown = false;
  /** Shutting down, and no request was under way: idle keep-alive connections are closed as they come. */
  let closingIdle = false;

  const server = createServer({ keepAlive: true }, function fcRuntimeListener(req, res) {
    active.add(res);
    res.once('close', () => {
      active.delete(res);
      if (closingIdle) server.closeIdleConnections();
      if (active.size === 0) idle?.();
    });
    if (shuttingDown) res.setHeader('connection', 'close');
    const path = lifecyclePath(req);
    if (path === undefined) {
      if (onFc) markFailureBeforeFcAsync(req, res, hooks.app);
      return listener(req, res);
    }
    return answerLifecycle(res, path, () => lifecycle(path), logger);
  });
  server.requestTimeout = 0;
  server.timeout = 0;
  // Node keeps a request's first 1,000 headers and drops the rest without a word; FC passes up to
  // 8 KB of them (more than 1,000 short ones), Content-Length or X-Fc-Invocation-Type maybe last.
  server.maxHeadersCount = 0;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;

  /**
   * The async backends of the app's `fcAsync` middleware, started: one that does not start fails
   * the start (FC replaces the instance) rather than leave an instance whose every async request
   * answers 503 while its sync routes look healthy. A failed one is tried again (at most once a
   * second, see `AsyncEngine.whenReady`).
   */
  function backendsStarted(): Promise<unknown> {
    return Promise.all(enginesToStart(hooks.app).map((engine) => engine.whenReady()));
  }

  async function lifecycle(path: string): Promise<void> {
    if (path === '/initialize') {
      await hooks.ready?.();
      await backendsStarted();
      await o.onInitialize?.();
    } else if (path === '/pre-stop') await preStop();
    else await runPreStopHooks(logger, o.preStopTimeoutMs, [o.onPreStop]);
  }

  /** Resolves once no request is under way, a turn of the event loop after the last one ended. */
  async function settled(): Promise<void> {
    for (;;) {
      await oneTurn();
      if (active.size === 0) return;
      await new Promise<void>((resolve) => {
        idle = resolve;
      });
    }
  }

  let stopping: Promise<void> | undefined;
  function preStop(budgetMs = o.preStopTimeoutMs): Promise<void> {
    stopping ??= (async () => {
      const started = Date.now();
      const runtimes = runtimesFor(hooks.app);
      // Half the budget for the work to finish, a fifth more for what ignores its stop and for the last
      // destination calls (async.stopGraceMs alone, 10 s, outlasts FC's default budget): close is
      // over before the process exits, so that a stopped task's record goes out.
      const closing = Promise.all(
        runtimes.map((r) => r.close({ timeoutMs: Math.floor(budgetMs / 2), stopWithinMs: Math.floor(budgetMs / 5) })),
      );
      await within(closing, Math.floor((budgetMs * 3) / 4), () =>
        logger.warn('async tasks did not settle within the pre-stop budget', { budgetMs }),
      );
      await runPreStopHooks(logger, budgetMs - (Date.now() - started), [o.onPreStop]);
    })();
    return stopping;
  }

  let closing: Promise<void> | undefined;
  let clean = true;
  function close(): Promise<void> {
    closing ??= (async () => {
      const started = Date.now();
      const left = () => o.shutdownTimeoutMs - (Date.now() - started);
      shuttingDown = true;
      for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
      const closed = new Promise<void>((resolve) => stopAccepting(server, resolve));
      // Each open connection may carry one more request: its client (a load balancer) may have
      // sent it before it could know, and it waits in the socket unread. It is answered with
      // `connection: close` rather than cut with its connection; idle connections are closed once
      // no request is under way.
      clean = await within(settled(), Math.floor((o.shutdownTimeoutMs * 2) / 3), () =>
        logger.warn('in-flight requests did not finish within the shutdown budget', { inFlight: active.size }),
      );
      closingIdle = true;
      server.closeIdleConnections();
      // FC's async invocations still running are cut with their connections (FC retries them): their
      // signal tells the app first, so that its clean-up runs before the process exits.
      if (!clean) abortPlatformCalls(hooks.app, new FcAsyncError('ShuttingDown', 'The function is shutting down'));
      await preStop(Math.max(1, Math.min(o.preStopTimeoutMs, left())));
      server.closeAllConnections();
      await closed;
      const appClose = hooks.close?.().catch((error: unknown) => logger.error('closing the app failed', { error }));
      if (appClose) await within(appClose, Math.max(1, left()));
      // Spans of requests that ended after a pre-stop (which flushed then) go out now, not with the process.
      await within(flushRuntimeSpans(hooks.app), Math.max(1, left()));
      for (const signal of o.signals) process.off(signal, onSignal);
    })();
    return closing;
  }

  let signalledAt: number | undefined;
  function onSignal(signal: NodeJS.Signals): void {
    if (signalledAt !== undefined) {
      // The same Ctrl-C told twice (the terminal signals the whole process group, and a runner such
      // as tsx or npm passes it on too): not a second press, which quits at once.
      if (Date.now() - signalledAt < SAME_SIGNAL_MS) return;
      logger.warn('second signal: exiting now, without finishing the shutdown', { signal });
      process.exit(130);
    }
    signalledAt = Date.now();
    logger.info('shutting down', { signal });
    close().then(
      () => process.exit(clean ? 0 : 1),
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  }

  await hooks.ready?.();
  await backendsStarted();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  for (const signal of o.signals) process.on(signal, onSignal);
  const port = (server.address() as AddressInfo).port;
  logger.info('listening', { host: o.host, port });
  return { server, port, host: o.host, preStop: () => preStop(), close };
}

/**
 * Stops taking connections and leaves the open ones as they are. `http.Server#close()` also
 * destroys every idle keep-alive connection at once, and with it a request that its client sent
 * before the shutdown and the server has not read yet: the client sees the connection reset, not
 * an answer, and cannot tell whether it was taken. `close()` closes the idle ones once no
 * request is under way.
 */
function stopAccepting(server: Server, onClosed: () => void): void {
  const own = server as { closeIdleConnections: Server['closeIdleConnections'] };
  own.closeIdleConnections = () => {};
  try {
    server.close(() => onClosed());
  } finally {
    delete (own as Partial<typeof own>).closeIdleConnections;
  }
}

/** Resolves after the event loop's next poll for I/O: what was in the sockets' buffers has been read. */
function oneTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * On FC, an async invocation answered 5xx before any `fcAsync()` middleware saw it (a middleware
 * in front of it threw, and the framework's error handler answered) gets `x-fc-status: 404` too:
 * without it FC counts the call a success, and the task is neither retried nor sent to onFailure.
 * A request the middleware saw carries its invocation, and the middleware's own rule decides.
 * Async or not is the middleware's call too, by the `detect` it was given (`asyncOnly`), even
 * before it is reached: the default detector's would miss what it counts async, or mark a failure
 * of what it counts sync.
 */
function markFailureBeforeFcAsync(req: IncomingMessage, res: ServerResponse, app: object | undefined): void {
  if (!isAsyncForApp(app, req.headers)) return;
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if ((args[0] as number) >= 500 && getInvocation(req) === undefined && !this.hasHeader(FC_STATUS_HEADER)) {
      // writeHead(status, [message], headers): raw headers as an array are added to, not mixed
      // with setHeader (which makes Node fold their repeated names, or refuse [name, value] pairs).
      const at = typeof args[1] === 'string' || (args[1] === undefined && args.length > 2) ? 2 : 1;
      const headers = args[at];
      if (Array.isArray(headers)) {
        const pairs = Array.isArray(headers[0]);
        const names = pairs ? headers.map((h) => (h as unknown[])[0]) : headers.filter((_, i) => i % 2 === 0);
        // The app's own x-fc-status stands, as it does when set with setHeader.
        if (!names.some((n) => String(n).toLowerCase() === FC_STATUS_HEADER)) {
          args[at] = pairs ? [...headers, [FC_STATUS_HEADER, '404']] : [...headers, FC_STATUS_HEADER, '404'];
        }
      } else if (!hasOwnStatus(headers)) {
        this.setHeader(FC_STATUS_HEADER, '404');
      }
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];
}

/** Whether writeHead's headers object sets x-fc-status itself (in any letter case). */
function hasOwnStatus(headers: unknown): boolean {
  return (
    typeof headers === 'object' &&
    headers !== null &&
    Object.keys(headers).some((n) => n.toLowerCase() === FC_STATUS_HEADER)
  );
}
