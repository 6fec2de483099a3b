import { SpanKind } from '@opentelemetry/api';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { fcAsync } from '../src/index.js';
import { logger } from './event.js';
import { installSdk, serve } from './tracing-sdk.js';

const sdk = installSdk();
const tracer = () => sdk.provider.getTracer('app');
afterAll(() => sdk.uninstall());

describe('fcAsync() with tracing (Express)', () => {
  it('a sync request gets one SERVER span named by its route; the app’s spans nest under it', async () => {
    const middleware = fcAsync({ logger: logger(), env: {}, tracing: { tracerProvider: sdk.provider } });
    const app = express();
    app.use(middleware);
    app.get('/users/:id', (_req, res) => {
      tracer().startActiveSpan('load user', (span) => {
        span.end();
        res.json({ ok: true });
      });
    });
    const { url, server } = await serve(app);
    const response = await fetch(`${url}/users/7`, {
      headers: { 'x-fc-request-id': '1-64f6d6e7-aaaaaaaaaaaaaaaaaaaaaaaa' },
    });
    expect(response.status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    server.close();
    const spans = sdk.exporter.getFinishedSpans();
    const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER);
    const user = spans.find((s) => s.name === 'load user');
    expect(serverSpan?.name).toBe('GET /users/:id');
    expect(serverSpan?.attributes['faas.invocation_id']).toBe('1-64f6d6e7-aaaaaaaaaaaaaaaaaaaaaaaa');
    expect(serverSpan?.attributes['http.route']).toBe('/users/:id');
    expect(serverSpan?.attributes['http.response.status_code']).toBe(200);
    expect(user?.parentSpanContext?.spanId).toBe(serverSpan?.spanContext().spanId);
    sdk.exporter.reset();
  });

  it('a local async request: 202 carries the accept span’s traceparent, the attempt is a CONSUMER span in that trace', async () => {
    const middleware = fcAsync({
      logger: logger(),
      env: {},
      async: { mode: 'local' },
      tracing: { tracerProvider: sdk.provider },
    });
    const app = express();
    app.use(middleware);
    app.post('/jobs/:id', (_req, res) => {
      tracer().startActiveSpan('work', (span) => {
        span.end();
        res.json({ done: true });
      });
    });
    const { url, server } = await serve(app);
    const response = await fetch(`${url}/jobs/9`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(response.status).toBe(202);
    const traceparent = response.headers.get('traceparent') ?? '';
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    await middleware.drain();
    server.close();
    const traceId = traceparent.split('-')[1];
    const spans = sdk.exporter.getFinishedSpans();
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    const work = spans.find((s) => s.name === 'work');
    expect(spans.find((s) => s.kind === SpanKind.PRODUCER)?.spanContext().traceId).toBe(traceId);
    expect(consumer?.spanContext().traceId).toBe(traceId);
    expect(consumer?.attributes['http.route']).toBe('/jobs/:id');
    expect(work?.parentSpanContext?.spanId).toBe(consumer?.spanContext().spanId);
    sdk.exporter.reset();
  });
});
