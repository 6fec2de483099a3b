import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { server } from '../src/custom-runtime.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let base = '';

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.close();
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('a custom-runtime server traced with createTracing', () => {
  it('one SERVER span per request, keyed by the FC request id, the app span nested', async () => {
    const requestId = '1-64f6d6e7-000000000000000000000003';
    const response = await fetch(`${base}/orders/42/invoice`, {
      method: 'POST',
      headers: { 'x-fc-request-id': requestId, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(await response.json()).toEqual({ id: '42', pages: 2 });
    // The span ends on the response's 'finish', which may come after the client has the answer.
    await vi.waitFor(() => expect(exporter.getFinishedSpans().some((s) => s.kind === SpanKind.SERVER)).toBe(true));
    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.attributes['faas.invocation_id'] === requestId);
    const render = spans.find((s) => s.name === 'render invoice');
    expect(server?.name).toBe('POST /orders/:id/invoice');
    expect(server?.attributes['http.response.status_code']).toBe(200);
    expect(render?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
  });
});
