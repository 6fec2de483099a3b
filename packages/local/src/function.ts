import { inspect } from 'node:util';
import {
  type AsyncBackend,
  type AsyncEngine,
  createFcHandler,
  type FcContext,
  type FcHandler,
  type FcHandlerOptions,
  type FcHttpResult,
  type FcRequest,
  holdEngineStarts,
  isFcAsyncError,
  type Logger,
  newRequestId,
  parseFcEvent,
} from '@fc-async/core';
import { adapterFor } from './adapters.js';
import { DEFAULT_REDIS_PREFIX, type EntryHold, functionPrefix } from './backend.js';
import { isCustomRuntimeFailure } from './custom-proxy.js';
import { type EmulatorPort, startCustomRuntime } from './custom-runtime.js';
import { type EntryKind, entriesLoading, loadEntry } from './entry.js';
import {
  buildContext,
  buildFcEvent,
  type FunctionIdentity,
  type IncomingCall,
  requestFromCall,
  serviceNameEnv,
} from './event.js';
import { fastifyReady, functionTimeout, withinTimeout } from './function-guards.js';
import { loadLifecycleHooks } from './lifecycle.js';
import { MAX_RESPONSE_BYTES, responseTooLarge } from './limits.js';
import {
  eventListener,
  type FunctionLog,
  fc2HttpListener,
  fc3HttpListener,
  isFunctionError,
  isFunctionTimeout,
  withoutIgnoredHeaders,
} from './listeners.js';
import type { EmulatorLog } from './log.js';
import { lendEnv } from './process-env.js';
import type { AsyncConfigInput, FunctionSpec } from './spec.js';

/** An async config as the control plane stores it. */
export interface StoredAsyncConfig extends AsyncConfigInput {
  createdTime: string;
  lastModifiedTime: string;
}

/** A function the emulator serves: its handler (with its own async engine) and its async config. */
export interface LocalFunction {
  readonly spec: FunctionSpec;
  readonly identity: FunctionIdentity;
  readonly kind: EntryKind | 'custom-runtime';
  readonly handler: FcHandler;
  readonly engine: AsyncEngine;
  readonly arn: string;
  /**
   * Whether a sync call can be given up before its app answers (`invoke`'s `giveUp`): an app the
   * core's entry runs in-process, whose invocation has a signal to abort.
   */
  readonly givesUp: boolean;
  asyncConfig: StoredAsyncConfig | undefined;
  /**
   * Stops what the function started: a custom runtime's process (`GET /pre-stop`, SIGTERM,
   * SIGKILL); the `process.env` variables set for an entry loaded in-process are put back.
   */
  shutdown?: (() => Promise<void>) | undefined;
  /**
   * Sends a call through FC's path: an FC 3.0 event with the common headers, then the handler.
   * `nodeHeaders`: the call's headers are Node's (the HTTP trigger's), so that an fc-async
   * handler can be given the request the event would parse into, without the event.
   * `giveUp`: aborting it ends a sync call early (a shutdown): the invocation's signal aborts with
   * its reason, and the call answers that reason once the app has settled.
   */
  invoke(
    call: IncomingCall,
    options?: { requestId?: string; trusted?: boolean; nodeHeaders?: boolean; giveUp?: AbortSignal },
  ): Promise<{ result: FcHttpResult; requestId: string }>;
}

/** What every function shares. */
export interface FunctionDeps {
  log: EmulatorLog;
  region: string;
  accountId: string;
  instanceId: string;
  concurrency: number;
  maxQueuedTasks: number;
  retryBaseMs: number;
  /** Headers kept out of task records and replays on top of the default list (`--redact-header`). */
  redactHeaders?: readonly string[] | undefined;
  backend?: AsyncBackend | undefined;
  /** Holds the start of the backends the entry's own engines have, until the config is in force. */
  engineHold?: EntryHold | undefined;
  /** The emulator's own ports, which a custom runtime listening on a fixed port must not take. */
  ports?: readonly EmulatorPort[] | undefined;
}

/**
 * The core handler's internal entry (`HANDLE_REQUEST` in @fc-async/core's handler.ts): the FC 3.0
 * handler minus `parseFcEvent`, given a sync call's deadline, which the core keeps as FC does: once
 * `timeoutMs` pass it answers `reason()` (504 `FunctionTimeout`) and ends the invocation's span.
 * Absent on a handler from another copy of the core that lacks it.
 */
const HANDLE_REQUEST = Symbol.for('fc-async.handleRequest');
type Deadline = { readonly timeoutMs: number; reason(): unknown; readonly signal?: AbortSignal | undefined };
type HandleRequest = (request: FcRequest, context: FcContext, deadline?: Deadline) => Promise<FcHttpResult>;

/**
 * The core handler's internal entry (`LIMIT_ANSWER` in @fc-async/core's handler.ts): bounds the
 * body of the app's answers, past which the invocation fails with `tooLarge()`.
 */
const LIMIT_ANSWER = Symbol.for('fc-async.limitAnswer');
type LimitAnswer = (limit: { readonly bytes: number; tooLarge(): Error } | undefined) => void;

/** @default timeout of a function without one, in seconds */
const DEFAULT_TIMEOUT = 60;

/**
 * Loads one function: sets the `FC_*` variables FC gives the function (and its
 * `environmentVariables`) before its module is imported (until `shutdown`), picks the adapter or
 * listener for what the module exports, and builds its handler with a local async engine.
 */
export async function createLocalFunction(spec: FunctionSpec, deps: FunctionDeps): Promise<LocalFunction> {
  const identity: FunctionIdentity = {
    name: spec.name,
    handler: spec.handler,
    region: spec.region ?? deps.region,
    accountId: deps.accountId,
    qualifier: 'LATEST',
    memorySize: spec.memorySize ?? 128,
    timeout: spec.timeout ?? DEFAULT_TIMEOUT,
    logProject: spec.logConfig?.project,
    logStore: spec.logConfig?.logstore,
    style: spec.style,
    serviceName: spec.serviceName,
    event: spec.http === undefined,
  };
  // FC_REGION stays unset: with FC_FUNCTION_NAME it would put an fc-async handler of the entry in
  // platform mode, while here it should run its own local engine (region: context, x-fc-region).
  // A custom runtime's process does get it (customRuntimeEnv): the emulator plays FC in front of
  // it, so an fc-async middleware there is rightly in platform mode.
  const env: Record<string, string> = {
    FC_FUNCTION_NAME: identity.name,
    FC_FUNCTION_HANDLER: identity.handler,
    FC_FUNCTION_MEMORY_SIZE: String(identity.memorySize),
    FC_ACCOUNT_ID: identity.accountId,
    FC_QUALIFIER: identity.qualifier,
    FC_INSTANCE_ID: deps.instanceId,
    ...serviceNameEnv(identity),
    ...spec.environmentVariables,
  };
  const options: FcHandlerOptions = {
    logger: namedLogger(deps.log.logger, spec.name),
    env,
    ...(deps.redactHeaders?.length ? { redactHeaders: deps.redactHeaders } : {}),
    async: {
      mode: 'local',
      functionName: spec.name,
      concurrency: deps.concurrency,
      maxQueuedTasks: deps.maxQueuedTasks,
      timeoutSeconds: identity.timeout,
      backoff: { baseMs: deps.retryBaseMs, maxMs: Math.max(deps.retryBaseMs, 60_000) },
      ...(deps.backend ? { backend: deps.backend } : {}),
    },
  };
  if (spec.customRuntime) {
    const runtime = await startCustomRuntime(spec, identity, deps);
    try {
      const async = { ...options.async, isFailure: isCustomRuntimeFailure };
      const handler = createFcHandler(runtime.listener, { ...options, async });
      return localFunction(spec, identity, 'custom-runtime', handler, runtime.stop);
    } catch (error) {
      await runtime.stop();
      throw error;
    }
  }
  // Until the emulator closes (shutdown): a test's next handler must not find them in process.env.
  const giveBackEnv = lendEnv(env);
  try {
    return await loadFunction(spec, identity, options, deps, giveBackEnv);
  } catch (error) {
    giveBackEnv();
    throw error;
  }
}

/** The rest of {@link createLocalFunction} for an entry loaded in-process, with its variables set. */
async function loadFunction(
  spec: FunctionSpec,
  identity: FunctionIdentity,
  options: FcHandlerOptions,
  deps: FunctionDeps,
  giveBackEnv: () => void,
): Promise<LocalFunction> {
  // An fc-async handler the entry makes takes these where its own options say nothing.
  const { mode: _mode, functionName: _name, ...async } = options.async ?? {};
  deps.engineHold?.offer({ logger: options.logger, async, redactHeaders: options.redactHeaders });
  const entry = await sayWhileLoading(loadHeld(spec, deps.instanceId, deps.engineHold), spec.file, deps.log);
  // As FC runs it: once the code has loaded, before the function takes its first invocation.
  const contextLogger = functionLog(deps.log, spec.name);
  const hooks = await loadLifecycleHooks(spec, identity, deps.log, contextLogger, instanceOf(spec, deps.instanceId));
  await hooks.initialize();
  // From here on the initializer has run: a start that fails now still gets its preStop, which
  // undoes what it opened (a pool, a timer that would keep the process alive).
  try {
    let handler: FcHandler;
    const own = entry.kind === 'fc-async-handler' ? (entry.value as FcHandler) : undefined;
    if (own?.engine) {
      // An fc-async handler in local mode already is what the emulator builds: use it, with its own options.
      handler = own;
      if (own.engine.timeoutSeconds > identity.timeout)
        deps.log.notice(
          `${spec.name}: its handler's async.timeoutSeconds (${own.engine.timeoutSeconds} s) is above the function's timeout (${identity.timeout} s); here the handler's ends its attempts, on FC the function's timeout ends them first`,
        );
      const hold = deps.engineHold;
      if (deps.backend && !hold?.backendTaken)
        deps.log.notice(
          `${spec.name} is an fc-async handler with its own async backend: --store and --redis do not apply to it`,
        );
      else if (deps.backend && hold && hold.handlersMade > 1)
        deps.log.notice(
          `${spec.name}: its entry made ${hold.handlersMade} fc-async handlers; --store and --redis went to the first one made, the others keep their tasks in memory`,
        );
    } else if (entry.kind === 'express' || entry.kind === 'koa' || entry.kind === 'fastify') {
      const served = withBackendKept(options, spec, deps);
      handler = (await adapterFor(entry.kind, spec.file))(entry.value, served);
      if (entry.kind === 'fastify') await fastifyReady(entry.value, spec.file);
    } else {
      // A plain handler that calls an fc-async handler of its own: the emulator's engine takes the tasks.
      const served = withBackendKept(options, spec, deps);
      const fn = entry.value as (...args: unknown[]) => unknown;
      const listener =
        entry.kind === 'fc-async-handler' || (spec.http && spec.style === 'fc3')
          ? fc3HttpListener(fn, identity, contextLogger)
          : spec.http
            ? fc2HttpListener(fn, identity, contextLogger)
            : eventListener(fn, identity, contextLogger);
      // FC retries what its runtime counts as a function error, not a 500 the handler returned.
      handler = createFcHandler(listener, { ...served, async: { ...served.async, isFailure: isFunctionError } });
    }
    const notStarted = deps.engineHold?.notStarted() ?? [];
    if (notStarted.length > 0)
      deps.log.notice(
        `${spec.name}: its entry's fcAsync() or inner fc-async handler names an async backend of its own (${[...new Set(notStarted)].join(', ')}), which is not started: the emulator plays FC in front of the app, its engine takes the async calls and runs every attempt (fcAsync() is in platform mode, as on FC); ${
          own?.engine
            ? 'the tasks are in the store of the handler the entry exports'
            : deps.backend
              ? 'the tasks are in the store --store or --redis names'
              : `it keeps the tasks in memory (--redis URL keeps them in Redis under the prefix ${functionPrefix(DEFAULT_REDIS_PREFIX, spec.name)}, --store sqlite:PATH in a file)`
        }`,
      );
    return localFunction(spec, identity, entry.kind, handler, async () => {
      // Its tasks have drained by now (the emulator closes the handlers first).
      await hooks.preStop();
      giveBackEnv();
    });
  } catch (error) {
    await hooks.preStop();
    throw error;
  }
}

/**
 * The options of the engine the emulator builds around an entry it does not serve as it is (an
 * app, a plain handler): --store / --redis go to it, not to an fc-async handler the entry made
 * (see `EntryHold.disownBackend`); unless that handler's engine started with it while the entry
 * loaded (the entry awaited it), which keeps it: the emulator's engine is in memory then, with a
 * notice, rather than a second one on the same file or queue.
 */
function withBackendKept(options: FcHandlerOptions, spec: FunctionSpec, deps: FunctionDeps): FcHandlerOptions {
  if (!deps.engineHold || deps.engineHold.disownBackend() || !options.async?.backend) return options;
  deps.log.notice(
    `${spec.name}: an fc-async handler its entry made started --store/--redis while the entry loaded; the emulator's engine for it keeps its tasks in memory`,
  );
  const { backend: _kept, ...async } = options.async;
  return { ...options, async };
}

/** How long an entry may load before one notice says it still does. */
const STILL_LOADING_MS = 5000;

/**
 * `loading`, with one notice once it has taken {@link STILL_LOADING_MS}: an entry whose top-level
 * await never settles while a timer keeps the process alive would leave the emulator silent, its
 * ports not open. The notice's timer keeps no process alive: one with nothing left to run still
 * ends with the line about an await that nothing settles (see cli.ts).
 */
async function sayWhileLoading<T>(loading: Promise<T>, file: string, log: EmulatorLog): Promise<T> {
  const timer = setTimeout(() => {
    // A Nest app's init() (entry.ts), or the module's import.
    const waiting = entriesLoading().find((entry) => entry.file === file)?.waiting;
    const what =
      waiting === undefined || waiting === 'a top-level await'
        ? 'a top-level await has not settled (or its imports load slowly)'
        : `${waiting} has not settled`;
    log.notice(
      `still loading ${file} after ${STILL_LOADING_MS / 1000} s: ${what}; the emulator's ports open once every entry has loaded`,
    );
  }, STILL_LOADING_MS);
  timer.unref();
  try {
    return await loading;
  } finally {
    clearTimeout(timer);
  }
}

/** The module instance of `spec`'s entry in the emulator `instanceId` (see `loadEntry`). */
const instanceOf = (spec: FunctionSpec, instanceId: string) => `${spec.name}@${instanceId}`;

/** The entry of `spec` for the emulator `instanceId`, loaded under `hold`, which is abandoned when the load fails. */
async function loadHeld(spec: FunctionSpec, instanceId: string, hold: EntryHold | undefined) {
  // A module instance of its own per function and per emulator: a second emulator in the process
  // (a test suite's next start) must not get the handler the first one closed.
  const load = () => loadEntry(spec.file, spec.exportName, instanceOf(spec, instanceId));
  if (!hold) return load();
  try {
    return await holdEngineStarts(hold, load);
  } catch (error) {
    hold.abandon();
    throw error;
  }
}

/** The {@link LocalFunction} of a handler the emulator built or the entry exported. */
function localFunction(
  spec: FunctionSpec,
  identity: FunctionIdentity,
  kind: LocalFunction['kind'],
  handler: FcHandler,
  shutdown?: () => Promise<void>,
): LocalFunction {
  const engine = handler.engine;
  if (!engine) throw new Error(`The handler of ${spec.name} has no local async engine`);
  const handleRequest = (handler as unknown as Record<symbol, HandleRequest | undefined>)[HANDLE_REQUEST];
  // FC's 32 MB of a response, for an app or handler run in-process (a custom runtime's proxy holds
  // its answers to it itself): its answers are counted as written, and one past it fails the
  // invocation without being held. A handler from a copy of the core without the entry answers whole.
  if (kind !== 'custom-runtime') {
    const limitAnswer = (handler as unknown as Record<symbol, LimitAnswer | undefined>)[LIMIT_ANSWER];
    limitAnswer?.({ bytes: MAX_RESPONSE_BYTES, tooLarge: () => responseTooLarge(spec.name, false) });
  }
  const now = new Date().toISOString();
  // FC 3.0's event joins a repeated query value with commas and carries a text body as text; FC 2.0
  // and a custom runtime see the query and the body's bytes as sent.
  const asSent = spec.style === 'fc2' || spec.customRuntime !== undefined;
  const deadline: Deadline = { timeoutMs: identity.timeout * 1000, reason: () => functionTimeout(identity) };
  // An app's answer reaches FC as a built-in runtime's result, which FC strips (a plain handler's is stripped as
  // it is written; a custom runtime's answer is its own HTTP response).
  const strip: (result: FcHttpResult) => FcHttpResult =
    kind === 'custom-runtime' || kind === 'fc-handler' ? (result) => result : withoutIgnoredHeaders;
  /**
   * What the core's entry takes for a call: built from Node's headers (the trigger's), else parsed
   * from its event. `undefined` without the entry, or for an event the core refuses: the handler
   * then gets the event, and answers its 400.
   */
  const requestOf = (call: IncomingCall, requestId: string, trusted: boolean, nodeHeaders = false) => {
    if (!handleRequest) return undefined;
    const request = nodeHeaders ? requestFromCall(call, identity, requestId, { trusted, asSent }) : undefined;
    if (request) return request;
    try {
      return parseFcEvent(buildFcEvent(call, identity, requestId, trusted));
    } catch {
      return undefined;
    }
  };
  return {
    spec,
    identity,
    kind,
    handler,
    shutdown,
    engine,
    givesUp: handleRequest !== undefined && kind !== 'custom-runtime',
    arn: `acs:fc:${identity.region}:${identity.accountId}:functions/${spec.name}`,
    asyncConfig: spec.asyncConfig ? { ...spec.asyncConfig, createdTime: now, lastModifiedTime: now } : undefined,
    async invoke(call, invokeOptions = {}) {
      const requestId = invokeOptions.requestId ?? newRequestId();
      const trusted = invokeOptions.trusted ?? false;
      const context = buildContext(identity, requestId);
      // An async call is answered (202 or a refusal) without running the app: no timer for it.
      const async = String(call.headers['x-fc-invocation-type'] ?? '').toLowerCase() === 'async';
      const request = requestOf(call, requestId, trusted, invokeOptions.nodeHeaders);
      if (!request) {
        const answer = handler(buildFcEvent(call, identity, requestId, trusted), context);
        return { result: strip(await (async ? answer : withinTimeout(answer, identity))), requestId };
      }
      // A sync call has the function's timeout, as on FC: the core gives the invocation up then.
      const answer = (handleRequest as HandleRequest)(
        request,
        context,
        async ? undefined : invokeOptions.giveUp ? { ...deadline, signal: invokeOptions.giveUp } : deadline,
      );
      return { result: strip(await answer), requestId };
    },
  };
}

/**
 * The emulator's logger for one function's handler: each line names the function, as functions of one
 * s.yaml share the log (and the 429 notice, which a logger gets once per 10 s, is then one per function).
 */
function namedLogger(logger: Logger, name: string): Logger {
  const named = (fields: Record<string, unknown> | undefined) => ({ function: name, ...fields });
  return {
    debug: (message, fields) => logger.debug(message, named(fields)),
    info: (message, fields) => logger.info(message, named(fields)),
    warn: (message, fields) => logger.warn(message, named(fields)),
    error: (message, fields) => logger.error(message, named(fields)),
  };
}

/**
 * The log of a plain handler: `context.logger` (FC's `info`/`warn`/`error`/`debug`, a line with the
 * request id, an Error with its stack as FC's runtime prints it) and its failures, into the emulator's log.
 */
function functionLog(log: EmulatorLog, name: string): FunctionLog {
  const text = (args: unknown[]) => args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ');
  return {
    forRequest(requestId) {
      const fields = { function: name, requestId };
      return {
        debug: (...args: unknown[]) => log.logger.debug(text(args), fields),
        info: (...args: unknown[]) => log.logger.info(text(args), fields),
        log: (...args: unknown[]) => log.logger.info(text(args), fields),
        warn: (...args: unknown[]) => log.logger.warn(text(args), fields),
        error: (...args: unknown[]) => log.logger.error(text(args), fields),
      };
    },
    failed(requestId, error) {
      // An fc-async error (an inner fc-async handler reporting a failed attempt, its cause logged by it)
      // is told by its code and message, not by the stack of fc-async's own frames.
      if (isFunctionTimeout(error)) {
        // FC's runtime says it in one line; the stack would be the emulator's own timer.
        log.logger.warn('function timed out', { function: name, requestId, reason: (error as Error).message });
        return;
      }
      const what = isFcAsyncError(error) ? { code: error.code, reason: error.message } : { error };
      log.logger.error('function failed', { function: name, requestId, ...what });
    },
  };
}
