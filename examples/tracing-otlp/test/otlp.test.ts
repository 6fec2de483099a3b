import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fcHttpEvent } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What a loopback OTLP/HTTP collector received: one JSON export request per entry. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}
interface OtlpExport {
  resourceSpans: {
    resource: { attributes: OtlpSpan['attributes'] };
    scopeSpans: { spans: OtlpSpan[] }[];
  }[];
}

const received: OtlpExport[] = [];
const collector = createServer(async (req: IncomingMessage, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (req.url === '/v1/traces' && String(req.headers['content-type']).startsWith('application/json')) {
    received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport);
  }
  res.setHeader('content-type', 'application/json');
  res.end('{}');
});

const attr = (span: OtlpSpan | undefined, key: string) => {
  const value = span?.attributes.find((a) => a.key === key)?.value;
  return value && Object.values(value)[0];
};
const spans = () => received.flatMap((r) => r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)));

/** An FC 3.0 HTTP trigger event. */
const fcEvent = (method: string, path: string, requestId: string, headers: Record<string, string> = {}, body = '') =>
  fcHttpEvent({
    method,
    url: path,
    headers: { 'content-type': 'application/json', ...headers },
    body,
    requestId,
    sourceIp: '203.0.113.7',
    accountId: '1234567890123456',
  });
const context = (requestId: string) => ({ requestId, region: 'cn-hangzhou', function: { name: 'orders' } });

let example: typeof import('../src/index.js');

beforeAll(async () => {
  collector.listen(0, '127.0.0.1');
  await once(collector, 'listening');
  const { port } = collector.address() as AddressInfo;
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `http://127.0.0.1:${port}/v1/traces`;
  // As on FC: platform mode, so each invocation flushes its spans before it returns.
  process.env.FC_FUNCTION_NAME = 'orders';
  process.env.FC_REGION = 'cn-hangzhou';
  example = await import('../src/index.js');
});

afterAll(async () => {
  await example?.preStop();
  collector.close();
});

describe('tracing over OTLP with the Node SDK', () => {
  it('a sync invocation is exported, named by its route, before the handler returns', async () => {
    const requestId = '1-64f6d6e7-000000000000000000000001';
    const result = await example.handler(fcEvent('GET', '/orders/42', requestId), context(requestId));
    expect(result.statusCode).toBe(200);
    const server = spans().find((s) => attr(s, 'faas.invocation_id') === requestId);
    expect(server?.name).toBe('GET /orders/:id');
    expect(attr(server, 'http.route')).toBe('/orders/:id');
    expect(attr(server, 'faas.trigger')).toBe('http');
    const resource = received[0]?.resourceSpans[0]?.resource.attributes ?? [];
    expect(resource).toContainEqual({ key: 'service.name', value: { stringValue: 'orders' } });
  });

  it("an async invocation FC runs: the app's span nests under the invocation's span, one trace", async () => {
    const requestId = '1-64f6d6e7-000000000000000000000002';
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const result = await example.handler(
      fcEvent(
        'POST',
        '/orders/42/invoice',
        requestId,
        { 'X-Fc-Retry-Count': '0', 'X-Fc-Async-Task-Id': 'invoice_42', traceparent },
        '{}',
      ),
      context(requestId),
    );
    expect(JSON.parse(result.body)).toEqual({ id: '42', pages: 2 });
    const server = spans().find((s) => attr(s, 'faas.invocation_id') === requestId);
    const render = spans().find((s) => s.name === 'render invoice');
    expect(server?.name).toBe('POST /orders/:id/invoice');
    expect(server?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(server?.parentSpanId).toBe('00f067aa0ba902b7');
    expect(attr(server, 'fc_async.task_id')).toBe('invoice_42');
    expect(render?.parentSpanId).toBe(server?.spanId);
    expect(attr(render, 'order.id')).toBe('42');
  });
});
