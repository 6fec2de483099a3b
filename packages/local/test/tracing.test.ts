import { context, propagation, trace } from '@opentelemetry/api';
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
