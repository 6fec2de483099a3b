import type { Context, Span, TracerProvider } from '@opentelemetry/api';
import type { FcContext } from '../fc-types.js';
import type { Invocation } from '../invocation.js';
import type { BridgeResponse } from '../response.js';

/**
 * The request an invocation span starts from: an `FcRequest`, or a Node `IncomingMessage`'s
 * fields in custom-runtime middleware. Header names lower-case.
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http';
 * declare const req: IncomingMessage;
 * const request: TracingRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, remoteAddress: req.socket.remoteAddress };
 * ```
 */
export interface TracingRequest {
  method: string;
  /** Path plus query string. */
  url: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  remoteAddress?: string | undefined;
  /** The FC request id, when known apart from the `x-fc-request-id` header. */
  requestId?: string | undefined;
}

/**
 * What `requestHook` receives: the request (headers already stripped of credentials, cookies,
 * authorization and `redactHeaders`), and what is known of the invocation. `kind` is
 * `invocation` for the SERVER span of an invocation, `attempt` for the CONSUMER span of one
 * attempt of a local async task.
 *
 * @example
 * ```ts
 * import type { Span } from '@opentelemetry/api';
 * const requestHook = (span: Span, info: TracingRequestInfo) => {
 *   if (info.kind === 'invocation') span.setAttribute('app.tenant', String(info.request.headers['x-tenant'] ?? ''));
 * };
 * ```
 */
export interface TracingRequestInfo {
  kind: 'invocation' | 'attempt';
  request: {
    method: string;
    url: string;
    headers: Readonly<Record<string, string | string[] | undefined>>;
  };
  /** The invocation (kind `invocation`), once detected. */
  invocation?: Invocation | undefined;
  taskId?: string | undefined;
  /** 0 on the first attempt. */
  attempt?: number | undefined;
}

/**
 * What `responseHook` receives: {@link TracingRequestInfo} plus the response (a copy whose headers
 * are stripped as the request's are: `set-cookie` and `redactHeaders` removed) and, when the
 * invocation threw, the error.
 *
 * @example
 * ```ts
 * import type { Span } from '@opentelemetry/api';
 * const responseHook = (span: Span, info: TracingResponseInfo) => {
 *   span.setAttribute('app.cache', String(info.response?.headers['x-cache'] ?? 'none'));
 * };
 * ```
 */
export interface TracingResponseInfo extends TracingRequestInfo {
  response?: BridgeResponse | undefined;
  error?: unknown;
}

/**
 * `options.tracing`: OpenTelemetry spans for every invocation, keyed by the FC request id. fc-async
 * uses only `@opentelemetry/api`; your SDK decides where spans go. Without an SDK (and without
 * `tracerProvider`) tracing costs next to nothing. See docs/tracing.md.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * const tracing: TracingOptions = {
 *   requestHook: (span, info) => span.setAttribute('app.route_kind', info.kind),
 *   flushTimeoutMs: 1000,
 * };
 * createFcHandler(app, { tracing });
 * ```
 */
export interface TracingOptions {
  /**
   * `false` turns fc-async's spans off, even with an SDK registered (the app's own spans are
   * not affected).
   * @default true
   */
  enabled?: boolean | undefined;
  /**
   * Where spans go.
   * @default the global provider (`trace.getTracerProvider()`), a no-op until an SDK registers one
   */
  tracerProvider?: TracerProvider | undefined;
  /** Called in a safe call (what it throws is logged) once a span's request is known. @default none */
  requestHook?: ((span: Span, info: TracingRequestInfo) => void) | undefined;
  /** Called in a safe call (what it throws is logged) just before a span ends. @default none */
  responseHook?: ((span: Span, info: TracingResponseInfo) => void) | undefined;
  /**
   * The parent context of an invocation's SERVER span; return `undefined` for a new root. For FC
   * 2.0's Jaeger context pass {@link extractFc2TraceContext}.
   * @default W3C `traceparent` / `tracestate` / `baggage` through the global propagator
   */
  extractContext?: ((request: TracingRequest, context: FcContext | undefined) => Context | undefined) | undefined;
  /**
   * Platform mode (on FC): after each invocation, spans are flushed (`forceFlush()`) for at most
   * this long before the handler returns, as FC may freeze the instance right after. `0` skips
   * the flush.
   * @default 2000
   */
  flushTimeoutMs?: number | undefined;
  /**
   * Local async: each attempt starts a new trace with only a link to the accept span, instead of
   * a child span in the accept's trace.
   * @default false
   */
  newTracePerAttempt?: boolean | undefined;
}

/** {@link TracingOptions} with defaults applied; the caller's object is never changed. */
export interface ResolvedTracingOptions {
  enabled: boolean;
  tracerProvider: TracerProvider | undefined;
  requestHook: TracingOptions['requestHook'];
  responseHook: TracingOptions['responseHook'];
  extractContext: TracingOptions['extractContext'];
  flushTimeoutMs: number;
  newTracePerAttempt: boolean;
}

const isFn = (v: unknown) => v === undefined || typeof v === 'function';

const KNOWN: ReadonlySet<string> = new Set([
  'enabled',
  'tracerProvider',
  'requestHook',
  'responseHook',
  'extractContext',
  'flushTimeoutMs',
  'newTracePerAttempt',
]);

/** Validates `options.tracing` eagerly and returns a resolved copy. */
export function resolveTracingOptions(options: TracingOptions | undefined): ResolvedTracingOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`Expected \`tracing\` to be an object, got \`${options === null ? 'null' : typeof options}\``);
  }
  const o = options ?? {};
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option \`tracing.${key}\``);
  }
  const provider = o.tracerProvider as { getTracer?: unknown } | undefined;
  if (provider !== undefined && (provider === null || typeof provider.getTracer !== 'function')) {
    throw new TypeError('Expected `tracing.tracerProvider` to be a TracerProvider (with a getTracer() method)');
  }
  for (const name of ['requestHook', 'responseHook', 'extractContext'] as const) {
    if (!isFn(o[name])) throw new TypeError(`Expected \`tracing.${name}\` to be a function, got \`${typeof o[name]}\``);
  }
  const flush = o.flushTimeoutMs ?? 2000;
  if (typeof flush !== 'number' || !Number.isFinite(flush) || flush < 0) {
    throw new TypeError(`Expected \`tracing.flushTimeoutMs\` to be a number from 0 and up, got \`${flush}\``);
  }
  const enabled = o.enabled ?? true;
  if (typeof enabled !== 'boolean') {
    throw new TypeError(`Expected \`tracing.enabled\` to be a boolean, got \`${typeof enabled}\``);
  }
  const newTrace = o.newTracePerAttempt ?? false;
  if (typeof newTrace !== 'boolean') {
    throw new TypeError(`Expected \`tracing.newTracePerAttempt\` to be a boolean, got \`${typeof newTrace}\``);
  }
  return {
    enabled,
    tracerProvider: o.tracerProvider,
    requestHook: o.requestHook,
    responseHook: o.responseHook,
    extractContext: o.extractContext,
    flushTimeoutMs: flush,
    newTracePerAttempt: newTrace,
  };
}
