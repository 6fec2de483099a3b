import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { startEcho, waitFor } from './helpers.js';

// An OpenTelemetry SDK registered in the process, as an entry that starts one does.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let emulator: Emulator;

beforeAll(async () => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  emulator = await startEcho();
});

afterAll(async () => {
  await emulator?.close({ timeoutMs: 1000 });
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const serverSpan = (requestId: string | null) =>
  exporter
    .getFinishedSpans()
    .find((s: ReadableSpan) => s.kind === 1 && s.attributes['faas.invocation_id'] === requestId);

describe('tracing through the FC API of fc-async dev', () => {
  it("InvokeFunction continues the caller's W3C trace, and its 202 names the span that accepted the task", async () => {
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/invocations`, {
      method: 'POST',
      headers: {
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': 'traced_invoke',
        traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
      },
      body: 'payload',
    });
    expect(res.status).toBe(202);
    const requestId = res.headers.get('x-fc-request-id');
    const server = await waitFor(() => serverSpan(requestId));
    expect(server.spanContext().traceId).toBe(CALLER_TRACE);
    expect(server.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    expect(res.headers.get('traceparent')).toBe(`00-${CALLER_TRACE}-${server.spanContext().spanId}-01`);
    const task = await waitFor(async () => {
      const got = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-tasks/traced_invoke`);
      const body = (await got.json()) as { status: string; traceId?: string };
      return body.status === 'Succeeded' ? body : undefined;
    });
    expect(task.traceId).toBe(CALLER_TRACE);
  });
});

// An FC 3.0 handler that throws under `fc-async dev`: its SERVER span records the throw (type and
// exception), as the CONSUMER span of an async attempt of the same handler does.
/** What a span records of a failure: status, `error.type`, and the exceptions' type and message. */
function failureOf(span: ReadableSpan | undefined) {
  return {
    status: span?.status.code,
    errorType: span?.attributes['error.type'],
    exceptions: span?.events
      .filter((e) => e.name === 'exception')
      .map((e) => [e.attributes?.['exception.type'], e.attributes?.['exception.message']]),
  };
}

const THREW = {
  status: SpanStatusCode.ERROR,
  errorType: 'TypeError',
  exceptions: [['TypeError', 'the handler threw']],
};

describe('an FC handler that throws, under the emulator', () => {
  it('a sync call: the SERVER span records the throw', async () => {
    const res = await fetch(`${emulator.triggerUrl}/throw`);
    expect(res.status).toBe(502);
    const requestId = res.headers.get('x-fc-request-id');
    const server = await waitFor(() =>
      exporter
        .getFinishedSpans()
        .find((s) => s.kind === SpanKind.SERVER && s.attributes['faas.invocation_id'] === requestId),
    );
    expect(failureOf(server)).toEqual(THREW);
  });

  it('an async call: each attempt span records it the same way', async () => {
    const res = await fetch(`${emulator.triggerUrl}/throw`, { headers: { 'x-fc-invocation-type': 'Async' } });
    expect(res.status).toBe(202);
    const requestId = res.headers.get('x-fc-request-id');
    const consumer = await waitFor(() =>
      exporter
        .getFinishedSpans()
        .find((s) => s.kind === SpanKind.CONSUMER && s.attributes['faas.invocation_id'] === requestId),
    );
    expect(failureOf(consumer)).toEqual(THREW);
  });
});
