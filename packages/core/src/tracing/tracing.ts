import { type Context, context, ROOT_CONTEXT, type Span, SpanKind, type Tracer, trace } from '@opentelemetry/api';
import type { EngineHooks } from '../async/engine.js';
import { createRedactor } from '../async/payload.js';
import type { FcContext } from '../fc-types.js';
import type { Invocation } from '../invocation.js';
import { createConsoleLogger, type Logger } from '../logger.js';
import type { BridgeResponse } from '../response.js';
import { httpAttributes, spanMethodOf } from './attributes.js';
import { createEngineHooks } from './engine-hooks.js';
import { type InvocationSpan, InvocationSpanImpl, takeColdStart } from './invocation-span.js';
import { openSpanOf } from './open-spans.js';
import {
  type ResolvedTracingOptions,
  resolveTracingOptions,
  type TracingOptions,
  type TracingRequest,
  type TracingRequestInfo,
  type TracingResponseInfo,
} from './options.js';
import { extractW3cContext } from './propagation.js';
import { TracerSource } from './provider.js';
import {
  ATTR_CLOUD_PLATFORM,
  ATTR_CLOUD_PROVIDER,
  ATTR_FAAS_COLDSTART,
  ATTR_FAAS_INVOCATION_ID,
  ATTR_FAAS_TRIGGER,
  CLOUD_PLATFORM_FC,
  CLOUD_PROVIDER_ALIBABA,
  FAAS_TRIGGER_HTTP,
} from './semconv.js';

/**
 * fc-async's tracing for one handler (or one custom-runtime middleware), from
 * {@link createTracing}: SERVER spans for invocations, and the engine hooks that trace local
 * async tasks (PRODUCER on accept, CONSUMER per attempt, a span per destination call).
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http';
 * declare const req: IncomingMessage;
 * const logger = createConsoleLogger();
 * const tracing = createTracing({ flushTimeoutMs: 500 }, { logger });
 * const span = tracing.startInvocationSpan({ method: 'GET', url: '/users/7', headers: req.headers });
 * // span is undefined when no SDK is registered: nothing to do then
 * ```
 */
export interface Tracing {
  /** True when spans record: a `tracerProvider` was given, or an SDK registered a global one. */
  isEnabled(): boolean;
  /**
   * Starts the SERVER span of an invocation, its parent extracted from the request (W3C by
   * default, `extractContext` when set). `undefined` when tracing is not enabled: callers then
   * skip all span work.
   */
  startInvocationSpan(request: TracingRequest, fcContext?: FcContext): InvocationSpan | undefined;
  /**
   * True when spans record for this invocation: it runs inside an invocation span, or it is an
   * attempt of a local async task while tracing is enabled. Cheaper than {@link Tracing.isEnabled}
   * on the sync path.
   */
  isTracing(invocation: Invocation): boolean;
  /** `forceFlush()` of the provider, bounded by `flushTimeoutMs`; never rejects. */
  flush(): Promise<void>;
  /** The hooks that trace an `AsyncEngine` (and `PlatformAsync`'s destination calls). */
  readonly engineHooks: EngineHooks;
}

/** Shared state and helpers of one {@link Tracing}; internal. */
export class TracingCore {
  readonly source: TracerSource;
  private readonly redact: (headers: TracingRequest['headers']) => Record<string, string | string[]>;
  /** The sites where the SDK (a span processor, a propagator) already threw: each is logged once. */
  private readonly faulted = new Set<string>();

  constructor(
    readonly options: ResolvedTracingOptions,
    readonly logger: Logger,
    redactHeaders: readonly string[] | undefined,
    /** `faas.name` of an invocation FC names no function for (a local run): `async.functionName`. */
    readonly functionName?: string | undefined,
  ) {
    this.source = new TracerSource(options.tracerProvider);
    this.redact = createRedactor(redactHeaders);
  }

  tracer(): Tracer | undefined {
    return this.options.enabled ? this.source.get() : undefined;
  }

  /** The SERVER span an invocation runs in, when this tracing is tracing it. */
  spanOf(invocation: Invocation): InvocationSpanImpl | undefined {
    const span = openSpanOf(invocation);
    return span !== undefined && span.core === this ? span : undefined;
  }

  withContext<T>(ctx: Context, fn: () => T): T {
    return context.with(ctx, fn);
  }

  /** The hook view of a request, headers redacted: build it only when there is a hook. */
  requestInfo(
    kind: TracingRequestInfo['kind'],
    request: Pick<TracingRequest, 'method' | 'url' | 'headers'>,
  ): TracingRequestInfo {
    return { kind, request: { method: request.method, url: request.url, headers: this.redact(request.headers) } };
  }

  /**
   * The hook view of a response: a copy with its headers redacted as a request's are (`set-cookie`,
   * `redactHeaders`), since an app may echo what it sets; the response itself still goes out whole.
   */
  responseView(response: BridgeResponse | undefined): BridgeResponse | undefined {
    if (response === undefined) return undefined;
    return { ...response, headers: this.redact(response.headers as TracingRequest['headers']) };
  }

  requestHook(span: Span, info: TracingRequestInfo): void {
    this.safeCall('requestHook', this.options.requestHook, span, info);
  }

  responseHook(span: Span, info: TracingResponseInfo): void {
    this.safeCall('responseHook', this.options.responseHook, span, info);
  }

  private safeCall<I>(name: string, hook: ((span: Span, info: I) => unknown) | undefined, span: Span, info: I): void {
    if (!hook) return;
    try {
      const result = hook(span, info);
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, (error: unknown) =>
          this.logger.warn('tracing hook failed', { hook: name, error }),
        );
      }
    } catch (error) {
      this.logger.warn('tracing hook threw', { hook: name, error });
    }
  }

  /**
   * Logs what the OpenTelemetry SDK threw (a span processor's `onStart`/`onEnd`, a propagator)
   * once per site: such a fault repeats on every span, and the request goes on without it.
   */
  sdkFault(site: string, error: unknown): void {
    if (this.faulted.has(site)) return;
    this.faulted.add(site);
    this.logger.warn(`tracing: the OpenTelemetry SDK threw in ${site}; the request goes on (logged once)`, { error });
  }

  /** Ends a span; what a span processor's `onEnd` throws is logged, never thrown. */
  endSpan(span: Span | undefined): void {
    try {
      span?.end();
    } catch (error) {
      this.sdkFault('span end', error);
    }
  }

  /** The parent of an invocation's SERVER span: `extractContext`, else W3C headers. */
  parentOf(request: TracingRequest, fcContext: FcContext | undefined): Context {
    const extract = this.options.extractContext;
    if (!extract) {
      try {
        return extractW3cContext(request);
      } catch (error) {
        this.sdkFault('context extraction', error);
        return ROOT_CONTEXT;
      }
    }
    try {
      return extract(request as never, fcContext) ?? ROOT_CONTEXT;
    } catch (error) {
      this.logger.warn('tracing extractContext threw; the span starts a new trace', { error });
      return ROOT_CONTEXT;
    }
  }
}

function header(headers: TracingRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Creates the tracing of a handler from `options.tracing`: what `createFcHandler` does, and what
 * custom-runtime middleware can call to trace the same way. Validates the options eagerly
 * (`TypeError` with the option's name).
 *
 * @example
 * ```ts
 * import { createTracing } from '@fc-async/core';
 * const tracing = createTracing({ requestHook: (span, info) => span.setAttribute('app.kind', info.kind) });
 * tracing.isEnabled(); // false until an OpenTelemetry SDK is registered
 * ```
 */
export function createTracing(
  options?: TracingOptions,
  deps: {
    logger?: Logger | undefined;
    redactHeaders?: readonly string[] | undefined;
    /** The function name of spans whose invocation names none (no FC in front): the task ARN's. */
    functionName?: string | undefined;
  } = {},
): Tracing {
  const core = new TracingCore(
    resolveTracingOptions(options),
    deps.logger ?? createConsoleLogger(),
    deps.redactHeaders,
    deps.functionName,
  );
  return {
    isEnabled: () => core.tracer() !== undefined,
    isTracing: (invocation) =>
      core.spanOf(invocation) !== undefined || (invocation.source === 'local-queue' && core.tracer() !== undefined),
    startInvocationSpan(request, fcContext) {
      const tracer = core.tracer();
      if (!tracer) return undefined;
      const parent = core.parentOf(request, fcContext);
      // Only what a sampler may decide on (the trigger, the HTTP request) goes in at the start,
      // which the SDK sanitises twice before setting; the rest is set on the span, for a third.
      const attributes = httpAttributes(request, { [ATTR_FAAS_TRIGGER]: FAAS_TRIGGER_HTTP });
      const method = spanMethodOf(attributes);
      let span: Span;
      try {
        span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }, parent);
      } catch (error) {
        // A span processor's onStart threw: this invocation runs untraced.
        core.sdkFault('span start', error);
        return undefined;
      }
      span.setAttribute(ATTR_CLOUD_PROVIDER, CLOUD_PROVIDER_ALIBABA);
      span.setAttribute(ATTR_CLOUD_PLATFORM, CLOUD_PLATFORM_FC);
      span.setAttribute(ATTR_FAAS_COLDSTART, takeColdStart());
      const requestId = header(request.headers, 'x-fc-request-id') ?? fcContext?.requestId ?? request.requestId;
      if (requestId) span.setAttribute(ATTR_FAAS_INVOCATION_ID, requestId);
      return new InvocationSpanImpl(span, trace.setSpan(parent, span), method, request, core, requestId);
    },
    flush: () => core.source.flush(core.options.flushTimeoutMs, core.logger),
    engineHooks: createEngineHooks(core),
  };
}
