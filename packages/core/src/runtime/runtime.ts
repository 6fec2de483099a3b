import type { IncomingMessage, ServerResponse } from 'node:http';
import { whenAbandoned } from '../async/abandon.js';
import { AsyncEngine, closeTimeoutMs } from '../async/engine.js';
import { resolveAsyncOptions, resolveMode } from '../async/options.js';
import { createRedactor } from '../async/payload.js';
import { endedByFcBeforeAnswer, fcEndedInvocation, PlatformAsync } from '../async/platform.js';
import { currentLateHold, currentStartHold } from '../async/start-hold.js';
import { type NodeHandler, runNodeHandler } from '../bridge.js';
import { flushBursts } from '../bursts.js';
import { FcAsyncError } from '../errors.js';
import { errorResponse } from '../handler.js';
import { checkHandlerOptions } from '../handler-options.js';
import { newRequestId } from '../ids.js';
import {
  asksForAsync,
  buildInvocation,
  detectInvocation,
  getInvocation,
  type Invocation,
  markMiddlewareReplay,
  setInvocation,
} from '../invocation.js';
import { createConsoleLogger, type Logger } from '../logger.js';
import type { FcRequest } from '../request.js';
import type { BridgeResponse } from '../response.js';
import type { InvocationSpan } from '../tracing/invocation-span.js';
import { runWithRoute } from '../tracing/route.js';
import { createTracing } from '../tracing/tracing.js';
import { holdUntilBound } from './backend.js';
import { addPreStopHook, within } from './hooks.js';
import { readNodeRequest } from './read.js';
import type { FcAsyncControls, FcRuntime, FcRuntimeOptions, ReplayTarget } from './types.js';
import { answeredBefore, failOnFcStatus, isFcFailure, markFcFailure } from './write.js';

/** SERVER spans of requests the middleware passed on to the app, for `proceed`. */
const spans = new WeakMap<object, InvocationSpan>();
const registry = new WeakMap<object, Set<FcAsyncControls>>();

/**
 * Runtimes that have not learned their app yet (an Express or Koa middleware learns it on its
 * first request), held weakly: one never bound nor closed is not kept alive by this.
 */
const unbound = new Set<WeakRef<FcAsyncControls>>();

function addUnbound(ref: WeakRef<FcAsyncControls>): void {
  for (const other of unbound) if (other.deref() === undefined) unbound.delete(other);
  unbound.add(ref);
}

/**
 * How each runtime tells an async invocation: its own `detect` with its own `env`, for
 * `listen(app)`'s rule on failures answered before the middleware (see `isAsyncForApp`).
 */
const asyncTellers = new WeakMap<object, (headers: IncomingMessage['headers']) => boolean>();

/**
 * Whether the `fcAsync()` middleware of `app` takes a request with `headers` as an async
 * invocation, by the `detect` and `env` it was given: those of the runtimes bound to `app`, else
 * of those bound to no app yet (a middleware not reached so far, in a router or behind one that
 * threw); the default detector when there is none. Any of them saying async is enough. A
 * detector that refuses the headers says not async (the middleware answers that itself).
 *
 * @example
 * ```ts
 * declare const app: object;
 * isAsyncForApp(app, { 'x-fc-invocation-type': 'Async' }); // true with the default detector
 * ```
 */
export function isAsyncForApp(app: object | undefined, headers: IncomingMessage['headers']): boolean {
  let tellers = runtimesFor(app).map((runtime) => asyncTellers.get(runtime));
  if (tellers.length === 0) tellers = unboundRuntimes().map((runtime) => asyncTellers.get(runtime));
  if (tellers.length === 0) tellers = [(h) => detectInvocation(h).type === 'Async'];
  return tellers.some((tell) => {
    try {
      return tell?.(headers) === true;
    } catch {
      return false;
    }
  });
}

/** The runtimes not bound to an app yet that are still alive. */
function unboundRuntimes(): FcAsyncControls[] {
  const alive: FcAsyncControls[] = [];
  for (const ref of unbound) {
    const runtime = ref.deref();
    if (runtime === undefined) unbound.delete(ref);
    else alive.push(runtime);
  }
  return alive;
}

/** The middleware runtimes that have served `app` (for `listen(app)`'s pre-stop and shutdown). */
export function runtimesFor(app: object | undefined): FcAsyncControls[] {
  return app ? [...(registry.get(app) ?? [])] : [];
}

/**
 * What `listen(app)` reaches of each runtime at its shutdown: how to flush its spans (its tracer
 * provider's, or the global SDK's), and in platform mode the signals of its async invocations
 * under way (see `closedEarly`).
 */
const shutdownParts = new WeakMap<object, { flushSpans: () => Promise<void>; calls: Set<AbortController> }>();

/**
 * Flushes the spans of the runtimes serving `app`, closed or not: a shutdown calls it once its
 * last requests have ended, since spans that ended after a pre-stop (which closed the runtimes
 * and flushed then) would otherwise be lost with the process.
 */
export function flushRuntimeSpans(app: object | undefined): Promise<unknown> {
  return Promise.all(runtimesFor(app).map((runtime) => shutdownParts.get(runtime)?.flushSpans()));
}

/**
 * Aborts the signals of the platform-mode async invocations under way in `app` with `reason`: a
 * shutdown past its budget, before it closes their connections (FC retries them), so that the
 * app's clean-up (a child process, a transcode) runs before the process exits.
 */
export function abortPlatformCalls(app: object | undefined, reason: unknown): void {
  for (const runtime of runtimesFor(app)) {
    for (const controller of shutdownParts.get(runtime)?.calls ?? []) controller.abort(reason);
  }
}

/**
 * The engines whose backend `listen(app)` waits for before it listens, and `POST /initialize`
 * before it answers: those of the runtimes serving `app`, and of every local-mode runtime not
 * bound to an app yet (it may be `app`'s: nothing tells before its first request).
 */
export function enginesToStart(app: object | undefined): AsyncEngine[] {
  const engines = new Set<AsyncEngine>();
  for (const runtime of [...runtimesFor(app), ...unboundRuntimes()]) if (runtime.engine) engines.add(runtime.engine);
  return [...engines];
}

function register(app: object, runtime: FcAsyncControls): void {
  const set = registry.get(app) ?? new Set();
  registry.set(app, set);
  set.add(runtime);
}

/** FC's own limit for async bodies it accepts (raised quota); platform mode reads up to this. */
const PLATFORM_BODY_LIMIT = 256 * 1024;

/**
 * Creates the custom-runtime middleware's engine: what `fcAsync(options)` does in Express, Koa
 * and Fastify, minus the framework. Validates `options.async` eagerly.
 *
 * @example
 * ```ts
 * const runtime = createFcRuntime({ async: { mode: 'local' } });
 * runtime.mode; // 'local'
 * ```
 */
export function createFcRuntime(options: FcRuntimeOptions = {}): FcRuntime {
  checkHandlerOptions(options, 'runtime');
  // Made while `fc-async dev` loads its entry: the emulator's log, as the handlers it makes use.
  const hold = currentStartHold();
  const logger = options.logger ?? hold?.logger?.() ?? createConsoleLogger();
  const detect = options.detect ?? detectInvocation;
  const env = options.env ?? { ...process.env };
  const asyncOptions = failOnFcStatus(resolveAsyncOptions(options.async));
  // Made while `fc-async dev` loads its entry: the emulator plays FC in front of the app (its engine
  // takes the async calls), so the middleware is in platform mode, as behind FC, and never starts
  // its own backend (a second worker of a shared queue, whose tasks the emulator would never see).
  // Made after the entry loaded, the late hold decides.
  const middleware = (hold ?? currentLateHold())?.middleware;
  const mode = middleware?.({ backend: asyncOptions.backend }) ?? resolveMode(asyncOptions.mode, env);
  const redact = createRedactor(options.redactHeaders);
  const tracing = createTracing(options.tracing, {
    logger,
    redactHeaders: options.redactHeaders,
    functionName: asyncOptions.functionName,
  });
  // Spans still buffered when FC stops the instance go out on pre-stop (see listen()), or on
  // close(), which takes the hook out: the process-wide hook list must not keep a closed runtime.
  const removeFlushHook = addPreStopHook(() => tracing.flush());

  let app: object | undefined;
  let listener: NodeHandler | undefined;
  let routeOf: ReplayTarget['routeOf'];
  let bound: (() => void) | undefined;
  const whenBound = new Promise<void>((resolve) => {
    bound = resolve;
  });

  const run = async (request: FcRequest, invocation: Invocation, acceptedHere: boolean): Promise<BridgeResponse> => {
    if (!listener) await whenBound;
    // A request that passed the middleware in front of an `fcAsync()` before it was taken: the
    // collecting run of an FC async invocation, or an attempt of a task whose stored mark says an
    // `fcAsync()`'s `handle` accepted it (not one that a createHandler() deployment sharing the
    // store took before its app ran).
    if (acceptedHere) markMiddlewareReplay(invocation);
    // Its invocation set: the middleware passes the replay on (see `handle`).
    // Its invocation set, and an async attempt's engine given a way to let go of its response.
    const attach = (req: IncomingMessage) => {
      setInvocation(req, invocation);
      whenAbandoned(invocation, req);
    };
    if (routeOf && tracing.isTracing(invocation)) {
      return runWithRoute(listener as NodeHandler, request, invocation, routeOf, attach);
    }
    return runNodeHandler(listener as NodeHandler, request, attach);
  };
  const deps = { logger, destinations: options.destinations, redact, hooks: tracing.engineHooks };
  const backend = asyncOptions.backend && holdUntilBound(asyncOptions.backend, whenBound);
  const engine =
    mode === 'local'
      ? new AsyncEngine({ ...asyncOptions, backend }, { ...deps, run, instanceId: env.FC_INSTANCE_ID, env })
      : undefined;
  // Platform mode's collecting run is of the request `handle` is answering: it passed the middleware.
  const platform =
    mode === 'platform'
      ? new PlatformAsync(asyncOptions, { ...deps, run: (request, invocation) => run(request, invocation, true) })
      : undefined;
  const limit = engine
    ? asyncOptions.maxAsyncPayloadBytes
    : Math.max(asyncOptions.maxAsyncPayloadBytes, PLATFORM_BODY_LIMIT);

  function bind(target: ReplayTarget): void {
    if (app === target.app) return;
    if (app !== undefined) {
      throw new FcAsyncError(
        'MiddlewareSharedAcrossApps',
        'One fcAsync() middleware serves one app: create one per app',
      );
    }
    app = target.app;
    listener = target.listener();
    routeOf = target.routeOf;
    register(app, runtime);
    unbound.delete(self);
    bound?.();
  }

  const calls = new Set<AbortController>();
  let closing: Promise<void> | undefined;
  const runtime: FcRuntime = {
    mode,
    logger,
    engine,
    tasks: engine?.tasks ?? { get: notInPlatformMode, list: notInPlatformMode, stop: notInPlatformMode },
    bind,
    drain: () => engine?.drain() ?? platform?.drain() ?? Promise.resolve(),
    close(closeOptions) {
      let timeoutMs = 0;
      if (closing === undefined) {
        // Checked before the close is remembered: a refused one leaves the runtime open for the next.
        try {
          timeoutMs = closeTimeoutMs(closeOptions);
        } catch (error) {
          return Promise.reject(error);
        }
      }
      unbound.delete(self);
      // Platform mode: FC's async invocations still running get `timeoutMs` to end (pre-stop gives
      // half its budget), then their answers are left to come when they do.
      closing ??= (
        engine?.close(closeOptions) ?? within((platform as PlatformAsync).drain(), timeoutMs).then(() => undefined)
      ).finally(() => {
        removeFlushHook();
        flushBursts(logger);
        return tracing.flush();
      });
      return closing;
    },
    async handle(req, target, res) {
      // Its own replays, and a request an fc-async handler around the app already took (the app
      // given to createHandler(), or served by `fc-async dev`, with this middleware in it): that
      // handler answers async calls and runs their attempts; a second layer would queue each again.
      const taken = getInvocation(req);
      if (taken !== undefined) {
        // An attempt a middleware in front answered, then passed on: that answer is the attempt's.
        if (taken.type === 'Async' && res?.writableEnded) return answeredInFront(res, taken.requestId, logger);
        return undefined;
      }
      const startSpan = () =>
        tracing.startInvocationSpan({
          method: req.method ?? 'GET',
          url: target.url ?? req.url ?? '/',
          headers: req.headers,
          remoteAddress: req.socket?.remoteAddress,
        });
      // Without `res` nothing tells when the app's answer ends: only a request answered here gets a span.
      let span = res ? startSpan() : undefined;
      let requestId: string | undefined;
      let platformAsync = false;
      let answer: BridgeResponse | undefined;
      try {
        bind(target);
        const detection = detect(req.headers, env);
        // A middleware in front answered (or began to), then called next() all the same: only a 202
        // accepts (FC's rule), so nothing is queued or run here for a caller told otherwise.
        const begun = detection.type === 'Async' && res !== undefined && res.headersSent;
        if (begun && res.writableEnded) {
          span?.end({ statusCode: res.statusCode });
          return answeredInFront(res, detection.requestId, logger);
        }
        if (begun) {
          logger.warn('an async request reached fcAsync() with its response begun: not accepted, passed on', {
            requestId: detection.requestId,
            statusCode: res.statusCode,
          });
        }
        // Without FC in front, this gateway gives the request id, as FC's does: a caller's
        // X-Fc-Request-Id would name the task (no task id given) without the task id rule, and two
        // tasks alike (destination receivers deduplicate on it).
        // Not for one a middleware in front began to answer: it is not accepted, and goes on (as a
        // sync one) under the id its warn line named.
        if (engine && detection.type === 'Async' && !begun) detection.requestId = newRequestId();
        requestId = detection.requestId;
        // On FC, a stop (StopAsyncTask, the timeout) of a custom runtime closes its request.
        const signal = platform && detection.type === 'Async' && res && !begun ? closedEarly(res, calls) : undefined;
        const invocation = buildInvocation(detection, req.headers, undefined, env, signal);
        setInvocation(req, invocation);
        if (!res && detection.type === 'Async') span = startSpan();
        span?.setInvocation(invocation);
        // One whose head went out goes on as a sync one does: what began the response ends it.
        if (detection.type !== 'Async' || begun) {
          if (span && res) passOn(span, req, res, target.routeOf);
          return undefined;
        }
        platformAsync = platform !== undefined;
        const request = await readNodeRequest(req, { limit, url: target.url });
        request.requestId = invocation.requestId;
        answer = engine
          ? await engine.accept(request, invocation, true)
          : await (span
              ? span.run(() => (platform as PlatformAsync).run(request, invocation, span?.context))
              : (platform as PlatformAsync).run(request, invocation));
      } catch (error) {
        span ??= res ? undefined : startSpan();
        span?.recordError(error);
        // Local mode: this gateway gives the request id (a refusal before detection decided one
        // gets its own), and its refusal carries it as its 202 would: the line logged for it names
        // what the caller got.
        if (engine) requestId ??= newRequestId();
        const response = errorResponse(error, logger, requestId);
        if (engine && requestId !== undefined) response.headers['x-fc-request-id'] ??= requestId;
        // FC accepted this task: any refusal (a body past the limit, a task id or retry count that
        // detection refused) is a failure FC retries and routes to onFailure, not a success that
        // drops it without a trace.
        const accepted = platformAsync || (platform !== undefined && asksForAsync(req.headers));
        answer = accepted && response.statusCode >= 400 ? markFcFailure(response) : response;
      }
      const inv = platformAsync ? getInvocation(req) : undefined;
      if (span && inv !== undefined && endedByFcBeforeAnswer(inv)) {
        // Its connection closed first (a stop, FC's timeout): what the app answered reached no one.
        span.end({ statusCode: undefined, error: connectionClosed(), failed: true });
        await tracing.flush();
      } else if (span) {
        span.end({ response: answer, failed: platformAsync && answer !== undefined && isFcFailure(answer) });
        // FC may freeze the instance as soon as it has the answer of a platform invocation.
        if (platformAsync) await tracing.flush();
      }
      return answer;
    },
    proceed(req, next) {
      const span = spans.get(req);
      return span ? span.run(next) : next();
    },
  };
  shutdownParts.set(runtime, { flushSpans: () => tracing.flush(), calls });
  asyncTellers.set(runtime, (headers) => detect(headers, env).type === 'Async');
  // Every mode: its engine is started before listening (local), its detector tells failures (both).
  const self = new WeakRef<FcAsyncControls>(runtime);
  addUnbound(self);
  return runtime;
}

/**
 * What `handle` answers for an async request (or a queued attempt) whose response a middleware in
 * front of `fcAsync()` already ended before passing it on: a warn line, and an answer that writes
 * nothing and passes nothing on.
 */
function answeredInFront(res: ServerResponse, requestId: string, logger: Logger): BridgeResponse {
  logger.warn('an async request reached fcAsync() already answered: not accepted, not run', {
    requestId,
    statusCode: res.statusCode,
  });
  return answeredBefore(res);
}

/** A span's error when the request's connection closed before its answer went out whole. */
const connectionClosed = () =>
  new FcAsyncError('ConnectionClosed', 'The connection closed before the response was sent');

/** A request the app answers itself: its span ends when the response finishes, or when its connection closes first. */
function passOn(span: InvocationSpan, req: object, res: ServerResponse, routeOf: ReplayTarget['routeOf']) {
  spans.set(req, span);
  const route = () => {
    try {
      return routeOf?.(req as IncomingMessage);
    } catch {
      return undefined; // a route reader that throws only costs the span its route
    }
  };
  let finished = false;
  res.once('finish', () => {
    finished = true;
    span.end({ statusCode: res.statusCode, route: route() });
  });
  res.once('close', () => {
    // Closed before the answer went out whole (the client left, FC's timeout): ERROR, and no status it never got.
    // Not `writableFinished`: an answer ended on a socket already gone never emits 'finish'.
    if (finished) return;
    const error = connectionClosed();
    span.end({ statusCode: res.headersSent ? res.statusCode : undefined, route: route(), error, failed: true });
  });
}

/**
 * A signal that aborts when the connection closes before the response was sent whole; in `calls`
 * until then, for a shutdown to abort (see `abortPlatformCalls`).
 */
function closedEarly(res: ServerResponse, calls: Set<AbortController>): AbortSignal {
  const controller = new AbortController();
  calls.add(controller);
  res.once('close', () => {
    calls.delete(controller);
    if (!res.writableFinished) controller.abort(fcEndedInvocation());
  });
  return controller.signal;
}

async function notInPlatformMode(): Promise<never> {
  throw new FcAsyncError(
    'NotAvailableInPlatformMode',
    'On FC the platform keeps async tasks: use the FC API (GetAsyncTask, ListAsyncTasks, StopAsyncTask)',
    { statusCode: 400 },
  );
}
