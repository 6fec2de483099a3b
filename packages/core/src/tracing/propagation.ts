import {
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import type { FcContext } from '../fc-types.js';
import type { FcRequest } from '../request.js';

/**
 * The default parent of an invocation's SERVER span: the W3C `traceparent`, `tracestate` and
 * `baggage` of the request through the global propagator, on top of the active context.
 */
export function extractW3cContext(request: Pick<FcRequest, 'headers'>): Context {
  return propagation.extract(context.active(), request.headers);
}

/**
 * An `extractContext` for FC 2.0: the Jaeger span context FC passes in the
 * `x-fc-tracing-opentracing-span-context` header or `context.tracing.openTracingSpanContext`
 * (`traceId:spanId:parentSpanId:flags`), with `context.tracing.openTracingSpanBaggages` as
 * baggage. A W3C `traceparent` on the request wins when there is one.
 *
 * @example
 * ```ts
 * import { createFcHandler, extractFc2TraceContext, type NodeHandler } from '@fc-async/core';
 * declare const app: NodeHandler;
 * export const handler = createFcHandler(app, { tracing: { extractContext: extractFc2TraceContext } });
 * ```
 */
export function extractFc2TraceContext(request: Pick<FcRequest, 'headers'>, fcContext?: FcContext): Context {
  let ctx = extractW3cContext(request);
  const baggages = fcContext?.tracing?.openTracingSpanBaggages;
  if (baggages && typeof baggages === 'object') {
    let baggage = propagation.getBaggage(ctx) ?? propagation.createBaggage();
    for (const [key, value] of Object.entries(baggages)) {
      if (typeof value === 'string') baggage = baggage.setEntry(key, { value });
    }
    ctx = propagation.setBaggage(ctx, baggage);
  }
  const w3c = trace.getSpanContext(ctx);
  if (w3c && isSpanContextValid(w3c)) return ctx;
  const header = request.headers['x-fc-tracing-opentracing-span-context'];
  const raw = (Array.isArray(header) ? header[0] : header) ?? fcContext?.tracing?.openTracingSpanContext;
  const jaeger = parseJaegerContext(raw);
  return jaeger ? trace.setSpanContext(ctx, jaeger) : ctx;
}

const HEX = /^[0-9a-f]{1,32}$/;

/** `traceId:spanId:parentSpanId:flags` (Jaeger's `uber-trace-id`), possibly URL-encoded. */
export function parseJaegerContext(raw: unknown): SpanContext | undefined {
  if (typeof raw !== 'string' || raw.length > 256) return undefined;
  let text = raw;
  try {
    text = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  const [traceId, spanId, , flags] = text.trim().toLowerCase().split(':');
  if (!traceId || !spanId || flags === undefined || !HEX.test(traceId) || !HEX.test(spanId) || spanId.length > 16) {
    return undefined;
  }
  const bits = Number.parseInt(flags, 16);
  const spanContext: SpanContext = {
    traceId: traceId.padStart(32, '0'),
    spanId: spanId.padStart(16, '0'),
    traceFlags: Number.isFinite(bits) && (bits & 1) === 1 ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** `00-{traceId}-{spanId}-{flags}`. */
export function formatTraceparent(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The span context of a W3C `traceparent` (and `tracestate`), remote. */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m) return undefined;
  const spanContext: SpanContext = {
    traceId: m[1] as string,
    spanId: m[2] as string,
    traceFlags: Number.parseInt(m[3] as string, 16),
    isRemote: true,
  };
  if (typeof tracestate === 'string' && tracestate) spanContext.traceState = createTraceState(tracestate);
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/**
 * A span's context as a plain carrier a task record can keep (also in a persistent store):
 * `traceparent`, `tracestate`, plus whatever the global propagator writes (baggage).
 */
export function toCarrier(ctx: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext && isSpanContextValid(spanContext)) {
    carrier.traceparent = formatTraceparent(spanContext);
    const state = spanContext.traceState?.serialize();
    if (state) carrier.tracestate = state;
  }
  return carrier;
}

/** The context a carrier from {@link toCarrier} describes, and its span context. */
export function fromCarrier(carrier: Record<string, string> | undefined): {
  context: Context;
  spanContext: SpanContext | undefined;
} {
  if (!carrier) return { context: ROOT_CONTEXT, spanContext: undefined };
  let ctx = propagation.extract(ROOT_CONTEXT, carrier);
  let spanContext = trace.getSpanContext(ctx);
  if (!spanContext || !isSpanContextValid(spanContext)) {
    spanContext = parseTraceparent(carrier.traceparent, carrier.tracestate);
    if (spanContext) ctx = trace.setSpanContext(ctx, spanContext);
  }
  return { context: ctx, spanContext };
}
