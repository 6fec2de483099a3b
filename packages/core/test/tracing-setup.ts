/** An OpenTelemetry SDK for the tracing tests: in-memory spans, async-local context, W3C propagation. */
import { type Attributes, context, propagation, type SpanContext, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { FcHttpEvent } from '../src/index.js';

export interface Sdk {
  exporter: InMemorySpanExporter;
  provider: BasicTracerProvider;
  spans(): ReadableSpan[];
  uninstall(): Promise<void>;
}

/** A provider with an in-memory exporter; `global` also registers it, a context manager and W3C propagators. */
export function createSdk(options: { global?: boolean } = {}): Sdk {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  if (options.global !== false) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    );
    trace.setGlobalTracerProvider(provider);
  }
  return {
    exporter,
    provider,
    spans: () => exporter.getFinishedSpans(),
    async uninstall() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

export const parentOf = (span: ReadableSpan | undefined) => span?.parentSpanContext?.spanId;
export const idOf = (span: ReadableSpan | undefined) => span?.spanContext().spanId;

/** The one finished span named `name` (throws when there is not exactly one). */
export function only(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1) {
    throw new Error(`expected one span "${name}", got ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  }
  return found[0] as ReadableSpan;
}

export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const PARENT_SPAN_ID = '00f067aa0ba902b7';
export const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;

/** Every string a span exposes: name, attributes, events and their attributes, links' attributes. */
export function spanStrings(span: ReadableSpan): string[] {
  const out = [span.name, span.status.message ?? ''];
  const add = (attributes: Attributes | undefined) => {
    for (const [key, value] of Object.entries(attributes ?? {})) out.push(key, JSON.stringify(value));
  };
  add(span.attributes);
  for (const event of span.events) {
    out.push(event.name);
    add(event.attributes);
  }
  for (const link of span.links) add(link.attributes);
  return out;
}

/** The request id FC put in an event. */
export const requestIdOf = (e: FcHttpEvent): string => e.requestContext?.requestId ?? '';

export const linkedTo = (span: ReadableSpan | undefined): SpanContext[] => span?.links.map((l) => l.context) ?? [];
