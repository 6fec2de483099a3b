import { SpanKind } from '@opentelemetry/api';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { fcAsync } from '../src/index.js';
import { logger } from './event.js';
import { installSdk } from './tracing-sdk.js';

const sdk = installSdk();
const tracer = () => sdk.provider.getTracer('app');
afterAll(() => sdk.uninstall());

async function app(async = false) {
  const fastify = Fastify();
  await fastify.register(fcAsync, {
    logger: logger(),
    env: {},
    async: async ? { mode: 'local' } : {},
    tracing: { tracerProvider: sdk.provider },
  });
  fastify.get('/users/:id', async () => {
    tracer().startActiveSpan('load user', (span) => span.end());
    return { ok: true };
  });
  fastify.post('/jobs/:id', async () => {
    await tracer().startActiveSpan('work', async (span) => span.end());
    return { done: true };
  });
  const url = await fastify.listen({ port: 0, host: '127.0.0.1' });
  return { fastify, url };
}

describe('fcAsync plugin with tracing (Fastify)', () => {
  it('a sync request gets one SERVER span named by its route; the app’s spans nest under it', async () => {
    const { fastify, url } = await app();
    const response = await fetch(`${url}/users/7`, {
      headers: { 'x-fc-request-id': '1-64f6d6e7-cccccccccccccccccccccccc' },
    });
    expect(response.status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    await fastify.close();
    const spans = sdk.exporter.getFinishedSpans();
    const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER);
    expect(serverSpan?.name).toBe('GET /users/:id');
    expect(serverSpan?.attributes['faas.invocation_id']).toBe('1-64f6d6e7-cccccccccccccccccccccccc');
    expect(spans.find((s) => s.name === 'load user')?.parentSpanContext?.spanId).toBe(serverSpan?.spanContext().spanId);
    sdk.exporter.reset();
  });

  it('a local async request: the attempt is a CONSUMER span in the accept span’s trace', async () => {
    const { fastify, url } = await app(true);
    const response = await fetch(`${url}/jobs/9`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(response.status).toBe(202);
    const traceId = (response.headers.get('traceparent') ?? '').split('-')[1];
    await fastify.fcAsync.drain();
    await fastify.close();
    const spans = sdk.exporter.getFinishedSpans();
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(consumer?.spanContext().traceId).toBe(traceId);
    expect(consumer?.attributes['http.route']).toBe('/jobs/:id');
    expect(spans.find((s) => s.name === 'work')?.parentSpanContext?.spanId).toBe(consumer?.spanContext().spanId);
    sdk.exporter.reset();
  });
});
