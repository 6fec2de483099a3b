import type { IncomingMessage } from 'node:http';
import { appErrorLogged } from './app-errors.js';
import { whenAbandoned } from './async/abandon.js';
import { AsyncEngine, type CloseOptions, closeTimeoutMs, type Destinations, type TaskApi } from './async/engine.js';
import { type AsyncOptions, resolveAsyncOptions, resolveMode } from './async/options.js';
import { createRedactor } from './async/payload.js';
import { isPlatformFailure, markPlatformFailure, PlatformAsync } from './async/platform.js';
import { currentLateHold, currentStartHold } from './async/start-hold.js';
import { type AnswerLimit, type NodeHandler, runBridged } from './bridge.js';
import { CLOSING, flushBursts, noteBurst, THROTTLED, unavailableBurst } from './bursts.js';
import { FcAsyncError, isFcAsyncError } from './errors.js';
import type { Fc2Request, Fc2Response, FcContext, FcHttpResult } from './fc-types.js';
import { isFc2Call, readFc2Request, writeFc2Response } from './fc2.js';
import { parseFcEvent, toFcHttpResult } from './fc3.js';
import { checkHandlerOptions } from './handler-options.js';
import { newRequestId } from './ids.js';
import {
  asksForAsync,
  buildInvocationLowerCased,
  type Detector,
  detectLowerCased,
  type Invocation,
  setInvocation,
} from './invocation.js';
import { createConsoleLogger, type Logger } from './logger.js';
import type { FcRequest } from './request.js';
import { type BridgeResponse, createBodyClassifier, DEFAULT_TEXT_CONTENT_TYPES } from './response.js';
import { within } from './runtime/hooks.js';
import type { InvocationSpan } from './tracing/invocation-span.js';
import type { TracingOptions } from './tracing/options.js';
import { type RouteOf, runWithRoute } from './tracing/route.js';
import { createTracing } from './tracing/tracing.js';

/**
 * Options of {@link createFcHandler} and every adapter's `createHandler`.
 *
 * @example
 * ```ts
 * const options: FcHandlerOptions = { logger: console, textContentTypes: ['text/*', 'application/json'] };
 * ```
 */
export interface FcHandlerOptions {
  /**
   * Where fc-async logs (errors thrown by the app, rejected requests).
   * @default a JSON-lines logger on stdout/stderr from level `info`
   */
  logger?: Logger | undefined;
  /**
   * Response content types returned to FC as text; others are base64-encoded. Patterns may use
   * `*`; a RegExp is tested against the lower-cased MIME type without parameters.
   * @default DEFAULT_TEXT_CONTENT_TYPES
   */
  textContentTypes?: readonly (string | RegExp)[] | undefined;
  /**
   * Replaces {@link detectInvocation}.
   * @default detectInvocation
   */
  detect?: Detector | undefined;
  /**
   * The environment fc-async reads `FC_*` variables from.
   * @default a snapshot of process.env taken when the handler is created
   */
  env?: Record<string, string | undefined> | undefined;
  /** Async invocation: local queue or platform mode, retries, limits, backend. See {@link AsyncOptions}. */
  async?: AsyncOptions | undefined;
  /** Where task outcomes go: `onSuccess` and `onFailure`, each one destination or several. */
  destinations?: Destinations | undefined;
  /**
   * Headers kept out of task records, destination records and logs, on top of
   * {@link DEFAULT_REDACTED_HEADERS} (FC credentials, `authorization`, `proxy-authorization`,
   * `x-acs-security-token`, `cookie`, `set-cookie`).
   * @default []
   */
  redactHeaders?: readonly string[] | undefined;
  /**
   * OpenTelemetry spans keyed by the FC request id: hooks, a fixed provider, the parent
   * extractor, the flush bound of platform mode. See {@link TracingOptions} and docs/tracing.md.
   * @default the global tracer provider (no-op until an SDK registers one), W3C propagation
   */
  tracing?: TracingOptions | undefined;
}

/**
 * The handler {@link createFcHandler} returns: FC 3.0's `(event, context)` and FC 2.0's
 * `(req, resp, context)` in one function.
 *
 * @example
 * ```ts
 * export const handler: FcHandler = createFcHandler((req, res) => res.end('ok'));
 * ```
 */
export interface FcHandler {
  (event: unknown, context?: FcContext): Promise<FcHttpResult>;
  (event: unknown, context: FcContext | undefined, callback: (error: unknown, result?: FcHttpResult) => void): void;
  (req: Fc2Request, resp: Fc2Response, context?: FcContext): Promise<void>;
  /** `local` (fc-async queues async requests) or `platform` (FC does). */
  readonly mode: 'local' | 'platform';
  /** Local mode's tasks (GetAsyncTask, ListAsyncTasks, StopAsyncTask in-process). In platform mode FC keeps the tasks: every call throws `NotAvailableInPlatformMode`. */
  readonly tasks: TaskApi;
  /** Local mode's engine, for the emulator and middleware; `undefined` in platform mode. */
  readonly engine: AsyncEngine | undefined;
  /**
   * The logger in force: `options.logger`, else (an entry loaded by `fc-async dev`) the emulator's
   * log, else JSON lines on stdout and stderr. Adapters log the app's errors through it.
   */
  readonly logger: Logger;
  /** Resolves when no async task is queued, running or being delivered. */
  drain(): Promise<void>;
  /**
   * Stops accepting async requests (503) and settles every task by `timeoutMs` (default 30 s);
   * `stopWithinMs` bounds what comes after that deadline (see {@link CloseOptions}).
   */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * What adapters add when they call the core: readiness, and the 404/error behaviour they own.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * const app = Fastify();
 * const hooks: AdapterHooks = { ready: () => app.ready() };
 * export const handler = createFcHandler((req, res) => app.routing(req, res), {}, hooks);
 * ```
 */
export interface AdapterHooks {
  /** Awaited once before the first request (Fastify's `ready()`, a thenable). */
  ready?: () => PromiseLike<unknown>;
  /**
   * The route template the framework matched (`/users/:id`), read after the app answered and
   * only while spans record: it names the SERVER span `{METHOD} {route}` and sets `http.route`.
   */
  routeOf?: RouteOf;
}

/**
 * Turns any Node request listener into an FC HTTP handler for both built-in runtime
 * signatures. Errors never escape: a malformed event answers 400 `{ code, message }`, an app that
 * throws or rejects answers a generic 500 and the error goes to `options.logger`.
 *
 * @example
 * ```ts
 * import { createFcHandler, getInvocation } from '@fc-async/core';
 * export const handler = createFcHandler((req, res) => {
 *   res.setHeader('content-type', 'application/json');
 *   res.end(JSON.stringify({ requestId: getInvocation(req)?.requestId }));
 * });
 * ```
 */
export function createFcHandler(app: NodeHandler, options: FcHandlerOptions = {}, hooks: AdapterHooks = {}): FcHandler {
  if (typeof app !== 'function') {
    throw new TypeError(`Expected \`app\` to be a request listener function, got \`${typeof app}\``);
  }
  checkHandlerOptions(options, 'handler');
  // Made while the emulator loads its entry: what these options leave out comes from the emulator.
  const hold = currentStartHold();
  const held = hold?.defaults?.({ backend: options.async?.backend !== undefined });
  const logger = options.logger ?? held?.logger ?? createConsoleLogger();
  const classify = createBodyClassifier(options.textContentTypes ?? DEFAULT_TEXT_CONTENT_TYPES);
  // The request's header names are lower-case (FcRequest), so the default needs no case-insensitive search.
  const detect = options.detect ?? detectLowerCased;
  const env = options.env ?? { ...process.env };
  const resolved = resolveAsyncOptions(held?.async ? { ...held.async, ...definedOnly(options.async) } : options.async);
  // A backend of its own (checked above) goes through the hold too, or, made after the entry loaded,
  // through the late one: the emulator keeps it from the engine of an inner handler, whose attempts
  // come from the emulator's engine.
  const ownBackend = (hold ?? currentLateHold())?.ownBackend;
  const asyncOptions =
    options.async?.backend !== undefined && resolved.backend !== undefined && ownBackend
      ? { ...resolved, backend: ownBackend(resolved.backend) }
      : resolved;
  const mode = resolveMode(asyncOptions.mode, env);
  // The emulator's names add to the handler's own: a secret it was told of stays out of its tasks.
  // One that is no array is left as it is, for createRedactor to refuse.
  const own = options.redactHeaders;
  const redactHeaders =
    held?.redactHeaders?.length && (own === undefined || Array.isArray(own))
      ? [...held.redactHeaders, ...(own ?? [])]
      : own;
  const redact = createRedactor(redactHeaders);
  const tracing = createTracing(options.tracing, {
    logger,
    redactHeaders,
    functionName: asyncOptions.functionName,
  });
  const routeOf = hooks.routeOf;

  let ready: Promise<unknown> | undefined;
  let isReady = hooks.ready === undefined;
  const whenReady = () => {
    ready ??= Promise.resolve((hooks.ready as () => PromiseLike<unknown>)()).then(() => {
      isReady = true;
    });
    return ready;
  };

  // The bound on the app's answers that `fc-async dev` sets (LIMIT_ANSWER): none otherwise.
  let answerLimit: AnswerLimit | undefined;
  // Not `async`: a promise returned from an async function costs the caller two more ticks.
  // Never throws: both runners report failures by rejecting.
  // The request gets its invocation, and an async attempt's engine a way to let go of its response.
  const runApp = (request: FcRequest, invocation: Invocation): Promise<BridgeResponse> => {
    const attach = (req: IncomingMessage) => {
      setInvocation(req, invocation);
      whenAbandoned(invocation, req);
    };
    return routeOf && tracing.isTracing(invocation)
      ? runWithRoute(app, request, invocation, routeOf, attach, answerLimit)
      : runBridged(app, request, attach, answerLimit);
  };
  const run = (request: FcRequest, invocation: Invocation): Promise<BridgeResponse> =>
    isReady ? runApp(request, invocation) : whenReady().then(() => runApp(request, invocation));

  const engine =
    mode === 'local'
      ? new AsyncEngine(asyncOptions, {
          logger,
          destinations: options.destinations,
          redact,
          run,
          instanceId: env.FC_INSTANCE_ID,
          env,
          hooks: tracing.engineHooks,
        })
      : undefined;
  const platformDeps = { logger, destinations: options.destinations, redact, run, hooks: tracing.engineHooks };
  const platform = mode === 'platform' ? new PlatformAsync(asyncOptions, platformDeps) : undefined;
  // Local mode: an async attempt a queue in front already accepted, run as platform mode runs FC's.
  let upstream: PlatformAsync | undefined;
  const upstreamAttempts = () => {
    upstream ??= new PlatformAsync(asyncOptions, platformDeps);
    return upstream;
  };

  // Promise chains rather than `async` functions on this path: each `async` layer costs the
  // caller more ticks per invocation (measured: 3.9 → 2.4 µs for a raw GET with both layers gone).
  function handle(
    request: FcRequest,
    context: FcContext | undefined,
    span?: InvocationSpan,
    deadline?: Deadline,
  ): Promise<BridgeResponse> {
    let requestId = context?.requestId ?? request.requestId;
    let result: Promise<BridgeResponse>;
    let stop: AbortController | undefined;
    try {
      const headers = request.headers;
      // FC's context.requestId names the invocation: a caller's X-Fc-Request-Id would name the task
      // without the task id rule, or two tasks alike.
      if (typeof context?.requestId === 'string' && context.requestId) headers['x-fc-request-id'] = context.requestId;
      else if (headers['x-fc-request-id'] === undefined) headers['x-fc-request-id'] = requestId ?? newRequestId();
      // Built-in runtimes give FC's retry count on the context, not in the event's headers.
      if (context?.retryCount !== undefined) fillRetryCount(headers, context.retryCount);
      const detection = detect(headers, env);
      requestId = detection.requestId;
      // A sync call with a deadline (the emulator's) aborts its signal when it is given up, as FC
      // ends the invocation: the app's own work (a child process) stops with it.
      stop = deadline && detection.type !== 'Async' ? new AbortController() : undefined;
      const invocation = buildInvocationLowerCased(detection, headers, context, env, stop?.signal);
      span?.setInvocation(invocation);
      result =
        detection.type !== 'Async'
          ? run(request, invocation)
          : platform
            ? platform.run(request, invocation, span?.context)
            : // A built-in runtime's retry count on the context: a queue in front (FC, or `fc-async dev`
              // serving a handler that calls this one) accepted the call and runs this attempt of it.
              context?.retryCount === undefined && engine
              ? engine.accept(withContextHeaders(request, context, invocation), invocation)
              : upstreamAttempts().run(request, invocation, span?.context);
    } catch (error) {
      span?.recordError(error);
      const refused = errorResponse(error, logger, requestId);
      // An async call FC (or a queue in front) already accepted: a refusal is a failure it counts.
      const accepted = (platform || context?.retryCount !== undefined) && asksForAsync(request.headers);
      return Promise.resolve(accepted ? markPlatformFailure(refused) : refused);
    }
    if (deadline) return withinDeadline(result, deadline, requestId, span, stop);
    return result.then(undefined, (error: unknown) => {
      span?.recordError(error);
      return errorResponse(error, logger, requestId);
    });
  }

  /**
   * `result`, unless `deadline.timeoutMs` pass first (the emulator's sync call, as FC ends an
   * invocation at its timeout): the invocation is then given up, answered with the response of
   * `deadline.reason()`, its signal aborts with it (`stop`), and its span ends with that error. What the app answers later goes
   * nowhere and ends nothing; a later failure is only logged, unless it is the same one (a custom
   * runtime's request closed at the same timeout). `deadline.signal` gives it up earlier, with its
   * reason, answered once the app has settled (the caller bounds that wait).
   */
  function withinDeadline(
    result: Promise<BridgeResponse>,
    deadline: Deadline,
    requestId: string | undefined,
    span: InvocationSpan | undefined,
    stop: AbortController | undefined,
  ): Promise<BridgeResponse> {
    return new Promise((resolve) => {
      let reason: unknown;
      let givenUp = false;
      let ended: (() => void) | undefined;
      const timer = setTimeout(() => {
        givenUp = true;
        reason = deadline.reason();
        stop?.abort(reason);
        span?.recordError(reason);
        resolve(givenUpResponse(reason, logger, requestId));
      }, deadline.timeoutMs);
      // Ended early (the emulator shutting down): the signal aborts at once, and the answer waits for
      // the app, so that its clean-up (a child process, a work folder) runs before the process exits.
      const end = () => {
        if (givenUp) return;
        clearTimeout(timer);
        givenUp = true;
        reason = deadline.signal?.reason;
        stop?.abort(reason);
        span?.recordError(reason);
        ended = () => resolve(givenUpResponse(reason, logger, requestId));
      };
      if (deadline.signal?.aborted) end();
      else deadline.signal?.addEventListener('abort', end, { once: true });
      const settled = () => {
        clearTimeout(timer);
        deadline.signal?.removeEventListener('abort', end);
        ended?.();
      };
      result.then(
        (response) => {
          settled();
          resolve(response);
        },
        (error: unknown) => {
          settled();
          if (!givenUp) {
            span?.recordError(error);
            resolve(errorResponse(error, logger, requestId));
          } else if (!sameFailure(error, reason)) {
            logger.error('invocation failed after it was given up', { requestId, error });
          }
        },
      );
    });
  }

  /** `handle` inside the invocation's SERVER span when spans record; in platform mode, flushed before returning. */
  function traced(request: FcRequest, context: FcContext | undefined, deadline?: Deadline): Promise<BridgeResponse> {
    const span = tracing.startInvocationSpan(request, context);
    return span ? handleInSpan(request, context, span, deadline) : handle(request, context, undefined, deadline);
  }

  // `then`, not `await`: with an async-local context manager (what traces use) every promise costs a hook call.
  function handleInSpan(
    request: FcRequest,
    context: FcContext | undefined,
    span: InvocationSpan,
    deadline: Deadline | undefined,
  ) {
    return span
      .run(() => handle(request, context, span, deadline))
      .then((response): BridgeResponse | Promise<BridgeResponse> => {
        span.end({ response, failed: isPlatformFailure(response) });
        return platform ? tracing.flush().then(() => response) : response;
      });
  }

  function fcHandler(a: unknown, b?: unknown, c?: unknown): Promise<unknown> | undefined {
    if (isFc2Call(a, b)) return handleFc2(a as Fc2Request, b as Fc2Response, c as FcContext | undefined);
    const result = handleFc3(a, b as FcContext | undefined);
    if (typeof c === 'function') {
      result.then((r) => c(null, r), c as (e: unknown) => void);
      return undefined;
    }
    return result;
  }

  function handleFc3(event: unknown, context: FcContext | undefined): Promise<FcHttpResult> {
    let request: FcRequest;
    try {
      request = parseFcEvent(event);
    } catch (error) {
      return Promise.resolve(toFcHttpResult(errorResponse(error, logger, context?.requestId), 'GET', classify));
    }
    return traced(request, context).then((response) => fc3Result(request, response));
  }

  /** What the FC 3.0 handler returns for a handled request; throws for an async invocation that failed on FC. */
  function fc3Result(request: FcRequest, response: BridgeResponse): FcHttpResult {
    if (isPlatformFailure(response)) throw platformFailure(response);
    try {
      return toFcHttpResult(response, request.method, classify);
    } catch (error) {
      return toFcHttpResult(unsendable(request, error), request.method, classify);
    }
  }

  /**
   * The answer to an app's response that FC's result cannot carry (more cookies than `set-cookie` has
   * case variants): the app's failure, logged and answered the generic 500, as a throw would be,
   * rather than a rejected handler, which FC answers 502 (its API with the stack).
   */
  function unsendable(request: FcRequest, error: unknown): BridgeResponse {
    const requestId = request.headers['x-fc-request-id'];
    return errorResponse(error, logger, typeof requestId === 'string' ? requestId : undefined);
  }

  /**
   * {@link HANDLE_REQUEST}: `handleFc3` without `parseFcEvent`, given up at `deadline`.
   */
  function handleRequest(
    request: FcRequest,
    context: FcContext | undefined,
    deadline?: Deadline,
  ): Promise<FcHttpResult> {
    return traced(request, context, deadline).then((response) => fc3Result(request, response));
  }

  async function handleFc2(req: Fc2Request, resp: Fc2Response, context: FcContext | undefined): Promise<void> {
    let request: FcRequest;
    try {
      request = await readFc2Request(req);
    } catch (error) {
      writeFc2Response(resp, errorResponse(error, logger, context?.requestId), 'GET');
      return;
    }
    const response = await traced(request, context);
    if (isPlatformFailure(response)) throw platformFailure(response);
    try {
      writeFc2Response(resp, response, request.method);
    } catch (error) {
      writeFc2Response(resp, unsendable(request, error), request.method);
    }
  }

  /** `work`, then the deliveries of attempts run for a queue in front (see `upstreamAttempts`). */
  const withUpstream = (work: Promise<void> | undefined): Promise<void> =>
    upstream ? Promise.all([work, upstream.drain()]).then(() => undefined) : (work ?? Promise.resolve());

  const tasks: TaskApi = engine?.tasks ?? {
    get: notInPlatformMode,
    list: notInPlatformMode,
    stop: notInPlatformMode,
  };
  Object.defineProperty(fcHandler, HANDLE_REQUEST, { value: handleRequest });
  Object.defineProperty(fcHandler, LIMIT_ANSWER, {
    value: (limit: AnswerLimit | undefined) => {
      answerLimit = limit;
    },
  });
  return Object.assign(fcHandler, {
    mode,
    tasks,
    engine,
    logger,
    drain: () => withUpstream(engine?.drain() ?? platform?.drain()),
    close: (closeOptions?: CloseOptions) => {
      // Platform mode: FC's invocations still running get `timeoutMs` to end (their answers come
      // when they do); the options are checked as in local mode.
      let work: Promise<unknown> | undefined;
      try {
        work = engine?.close(closeOptions) ?? (platform && within(platform.drain(), closeTimeoutMs(closeOptions)));
      } catch (error) {
        return Promise.reject(error);
      }
      return withUpstream(work?.then(() => undefined)).finally(() => flushBursts(logger));
    },
  }) as unknown as FcHandler;
}

/**
 * Internal entry point of an {@link FcHandler}, for `@fc-async/local` (which finds it under the
 * same registered symbol): `(request: FcRequest, context?: FcContext, deadline?: Deadline) =>
 * Promise<FcHttpResult>`, what the handler does with an FC 3.0 event once `parseFcEvent` has made
 * an `FcRequest` of it. The emulator builds that request straight from the Node request instead of
 * an event to parse, and gives a sync call its function's timeout as the `deadline`.
 */
const HANDLE_REQUEST = Symbol.for('fc-async.handleRequest');

/**
 * Internal entry point of an {@link FcHandler}, for `@fc-async/local`: `(limit: AnswerLimit |
 * undefined) => void` bounds the body the app's answers may have from then on, sync calls and
 * async attempts alike (FC's 32 MB of a sync response): past it the invocation fails with
 * `limit.tooLarge()`, without the bytes being held (see {@link AnswerLimit}).
 */
const LIMIT_ANSWER = Symbol.for('fc-async.limitAnswer');

/**
 * A sync call's deadline, given by the emulator to {@link HANDLE_REQUEST}: once `timeoutMs` pass
 * without an answer, the invocation is answered with `reason()` (an `FcAsyncError`: its status and
 * `{ code, message }`) and its span ends with that error, whatever the app does later. The app is
 * not told, as on FC.
 */
interface Deadline {
  readonly timeoutMs: number;
  reason(): unknown;
  /** Ends the invocation before `timeoutMs` with the signal's reason (answered once the app settles). */
  readonly signal?: AbortSignal | undefined;
}

/** A late failure that is the one an invocation was given up with: an fc-async error of the same code. */
function sameFailure(error: unknown, reason: unknown): boolean {
  return isFcAsyncError(error) && isFcAsyncError(reason) && error.code === reason.code;
}

/** The answer of an invocation given up with `reason`: an fc-async error's own, logged without a stack (a deadline threw it, not the app). */
function givenUpResponse(reason: unknown, logger: Logger, requestId: string | undefined): BridgeResponse {
  if (!isFcAsyncError(reason)) return errorResponse(reason, logger, requestId);
  logger.error('invocation given up', { requestId, code: reason.code, reason: reason.message });
  return jsonResponse(reason.statusCode, reason.toJSON(), reason.headers);
}

/** What a built-in runtime handler throws for a failed async invocation on FC, so that FC retries it. */
function platformFailure(response: BridgeResponse): FcAsyncError {
  return new FcAsyncError(
    'UnhandledInvocationError',
    `The async invocation failed with HTTP ${response.statusCode}; FC retries it or sends it to onFailure`,
  );
}

/** Sets `x-fc-retry-count` from the runtime's `context.retryCount`, FC's own count, when that is a whole number. */
function fillRetryCount(headers: FcRequest['headers'], retryCount: unknown): void {
  const whole =
    typeof retryCount === 'number'
      ? Number.isSafeInteger(retryCount) && retryCount >= 0
      : typeof retryCount === 'string' && /^\d{1,9}$/.test(retryCount);
  if (whole) headers['x-fc-retry-count'] = String(retryCount);
}

async function notInPlatformMode(): Promise<never> {
  throw new FcAsyncError(
    'NotAvailableInPlatformMode',
    'On FC the platform keeps async tasks: use the FC API (GetAsyncTask, ListAsyncTasks, StopAsyncTask)',
    { statusCode: 400 },
  );
}

/**
 * The response for an error that reached fc-async: an `FcAsyncError` below 500 answers with its
 * own status and `{ code, message }`; anything else is logged and answers a generic 500.
 *
 * @example
 * ```ts
 * const response = errorResponse(new FcAsyncError('InvalidArgument', 'bad delay', { statusCode: 400 }), silentLogger, 'req-1');
 * response.statusCode; // 400
 * ```
 */
export function errorResponse(error: unknown, logger: Logger, requestId?: string): BridgeResponse {
  // A refusal fc-async decided on (a 503 while shutting down too) is no failure: no stack logged.
  if (isFcAsyncError(error) && (error.statusCode < 500 || isDeliberate503(error))) {
    const burst = error.statusCode === 429 ? THROTTLED : error.statusCode === 503 ? CLOSING : undefined;
    if (burst) noteBurst(logger, error, burst);
    // A task id already taken: what a client retrying after a 503 with the same id is told.
    else if (error.statusCode === 409)
      logger.info('request rejected', { requestId, code: error.code, reason: error.message });
    else logger.warn('request rejected', { requestId, code: error.code, reason: error.message });
    return jsonResponse(error.statusCode, error.toJSON(), error.headers);
  }
  if (isFcAsyncError(error) && error.statusCode === 503) {
    // The store or queue under the engine failed (a full disk, Redis away): every request of a
    // burst fails alike, so the first is logged whole and the rest counted.
    noteBurst(logger, error, unavailableBurst(error.code));
    return jsonResponse(error.statusCode, error.toJSON(), error.headers);
  }
  // An adapter that logged the app's error, then destroyed the response with it, said it already.
  if (!appErrorLogged(error)) logger.error('invocation failed', { requestId, error });
  if (isFcAsyncError(error)) return jsonResponse(error.statusCode, error.toJSON(), error.headers);
  return jsonResponse(500, { code: 'InternalError', message: 'Internal Server Error' });
}

/**
 * `request`, carrying as FC's headers (`x-fc-function-memory`, `x-fc-version-id`) the function's
 * memory and version that a built-in runtime gives in its `context` rather than in the event: an
 * attempt of the local queue reads them from the accepted request's headers, and FC gives an
 * attempt the context it gives a sync call. Headers the request has already are kept.
 */
function withContextHeaders(request: FcRequest, context: FcContext | undefined, invocation: Invocation): FcRequest {
  const headers = request.headers;
  if (context?.function?.memory !== undefined && invocation.memoryMB !== undefined) {
    headers['x-fc-function-memory'] ??= String(invocation.memoryMB);
  }
  if (context?.service?.versionId && invocation.versionId !== undefined) {
    headers['x-fc-version-id'] ??= invocation.versionId;
  }
  return request;
}

/** A 503 fc-async answers by design (closing), rather than because something under it failed. */
function isDeliberate503(error: FcAsyncError): boolean {
  return error.statusCode === 503 && error.code === 'ServiceUnavailable' && error.cause === undefined;
}

/**
 * A small JSON response.
 *
 * @example
 * ```ts
 * const response = jsonResponse(404, { code: 'NotFound', message: 'no route' });
 * response.headers['content-type']; // 'application/json; charset=utf-8'
 * ```
 */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): BridgeResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

/** `options` without the keys set to `undefined`: those leave the setting to a default. */
function definedOnly(options: AsyncOptions | undefined): AsyncOptions {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options ?? {})) if (value !== undefined) out[key] = value;
  return out as AsyncOptions;
}
