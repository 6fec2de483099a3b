import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, waitFor } from './helpers.js';

// An FC 3.0 handler that throws under `fc-async dev`: its SERVER span records the throw (type and
// exception), as the CONSUMER span of an async attempt of the same handler does.

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let emulator: Emulator;

beforeAll(async () => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  emulator = await startEmulator({
    entry: fixture('echo-handler.mjs'),
    name: 'echo',
    port: 0,
    controlPort: 0,
    output: () => {},
  });
});

afterAll(async () => {
  await emulator.close({ timeoutMs: 1000 });
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

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
