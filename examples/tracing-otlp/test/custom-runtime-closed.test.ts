import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { server } from '../src/custom-runtime.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});

afterAll(async () => {
  server.close();
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('a custom-runtime server traced with createTracing', () => {
  it('a request whose connection closes before the answer still ends its SERVER span, as ERROR', async () => {
    // The body never arrives whole, so the app never answers; then the client goes away.
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    const received = once(server, 'request');
    socket.write(
      'POST /orders/7/invoice HTTP/1.1\r\nHost: x\r\nx-fc-request-id: 1-64f6d6e7-0000000000000000000000c1\r\n' +
        'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"a"',
    );
    await received;
    socket.destroy();
    await vi.waitFor(() => expect(exporter.getFinishedSpans().some((s) => s.kind === SpanKind.SERVER)).toBe(true));
    const span = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER);
    expect(span?.attributes['faas.invocation_id']).toBe('1-64f6d6e7-0000000000000000000000c1');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).not.toHaveProperty('http.response.status_code');
  });
});
