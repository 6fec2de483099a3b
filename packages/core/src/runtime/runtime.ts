import { AsyncEngine } from '../async/engine.js';
import { resolveAsyncOptions, resolveMode } from '../async/options.js';
import { createRedactor } from '../async/payload.js';
import { PlatformAsync } from '../async/platform.js';
import { type NodeHandler, runNodeHandler } from '../bridge.js';
import { FcAsyncError } from '../errors.js';
import { errorResponse } from '../handler.js';
import { buildInvocation, detectInvocation, type Invocation, setInvocation } from '../invocation.js';
import { createConsoleLogger } from '../logger.js';
import type { FcRequest } from '../request.js';
import type { BridgeResponse } from '../response.js';
import { readNodeRequest } from './read.js';
import type { FcAsyncControls, FcRuntime, FcRuntimeOptions, ReplayTarget } from './types.js';
import { markFcFailure } from './write.js';

const replayed = new WeakSet<object>();
const registry = new WeakMap<object, Set<FcAsyncControls>>();

/** The middleware runtimes that have served `app` (for `listen(app)`'s pre-stop and shutdown). */
export function runtimesFor(app: object | undefined): FcAsyncControls[] {
  return app ? [...(registry.get(app) ?? [])] : [];
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
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\``);
  }
  const logger = options.logger ?? createConsoleLogger();
  const detect = options.detect ?? detectInvocation;
  const env = options.env ?? { ...process.env };
  const asyncOptions = resolveAsyncOptions(options.async);
  const mode = resolveMode(asyncOptions.mode, env);
  const redact = createRedactor(options.redactHeaders);

  let app: object | undefined;
  let listener: NodeHandler | undefined;
  let bound: (() => void) | undefined;
  const whenBound = new Promise<void>((resolve) => {
    bound = resolve;
  });

  const run = async (request: FcRequest, invocation: Invocation): Promise<BridgeResponse> => {
    if (!listener) await whenBound;
    return runNodeHandler(listener as NodeHandler, request, (req) => {
      setInvocation(req, invocation);
      replayed.add(req);
    });
  };
  const deps = { logger, destinations: options.destinations, redact, run };
  const engine =
    mode === 'local' ? new AsyncEngine(asyncOptions, { ...deps, instanceId: env.FC_INSTANCE_ID }) : undefined;
  const platform = mode === 'platform' ? new PlatformAsync(asyncOptions, deps) : undefined;
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
    register(app, runtime);
    bound?.();
  }

  let closing: Promise<void> | undefined;
  const runtime: FcRuntime = {
    mode,
    engine,
    tasks: engine?.tasks ?? { get: notInPlatformMode, list: notInPlatformMode, stop: notInPlatformMode },
    bind,
    drain: () => engine?.drain() ?? platform?.drain() ?? Promise.resolve(),
    close(closeOptions) {
      closing ??= engine?.close(closeOptions) ?? platform?.drain() ?? Promise.resolve();
      return closing;
    },
    async handle(req, target) {
      if (replayed.has(req)) return undefined;
      let requestId: string | undefined;
      let platformAsync = false;
      try {
        bind(target);
        const detection = detect(req.headers, env);
        requestId = detection.requestId;
        const invocation = buildInvocation(detection, req.headers, undefined, env);
        setInvocation(req, invocation);
        if (detection.type !== 'Async') return undefined;
        platformAsync = platform !== undefined;
        const request = await readNodeRequest(req, { limit, url: target.url });
        request.requestId = invocation.requestId;
        if (engine) return await engine.accept(request, invocation);
        return await (platform as PlatformAsync).run(request, invocation);
      } catch (error) {
        const response = errorResponse(error, logger, requestId);
        return platformAsync && response.statusCode >= 500 ? markFcFailure(response) : response;
      }
    },
  };
  return runtime;
}

async function notInPlatformMode(): Promise<never> {
  throw new FcAsyncError(
    'NotAvailableInPlatformMode',
    'On FC the platform keeps async tasks: use the FC API (GetAsyncTask, ListAsyncTasks, StopAsyncTask)',
    { statusCode: 400 },
  );
}
