import Router from '@koa/router';
import { SpanKind } from '@opentelemetry/api';
import Koa from 'koa';
import { afterAll, describe, expect, it } from 'vitest';
import { fcAsync } from '../src/index.js';
import { logger } from './event.js';
import { installSdk, serve } from './tracing-sdk.js';

const sdk = installSdk();
const tracer = () => sdk.provider.getTracer('app');
afterAll(() => sdk.uninstall());

function app(async = false) {
  const middleware = fcAsync({
    logger: logger(),
    env: {},
    async: async ? { mode: 'local' } : {},
    tracing: { tracerProvider: sdk.provider },
  });
  const koa = new Koa();
  const router = new Router();
  router.get('/users/:id', (ctx) => {
    tracer().startActiveSpan('load user', (span) => span.end());
    ctx.body = { ok: true };
  });
  router.post('/jobs/:id', async (ctx) => {
    await tracer().startActiveSpan('work', async (span) => span.end());
    ctx.body = { done: true };
  });
  koa.use(middleware);
  koa.use(router.routes());
  return { koa, middleware };
}

describe('fcAsync() with tracing (Koa)', () => {
  it('a sync request gets one SERVER span named by its route; the app’s spans nest under it', async () => {
    const { koa } = app();
    const { url, server } = await serve(koa.callback());
    const response = await fetch(`${url}/users/7`, {
      headers: { 'x-fc-request-id': '1-64f6d6e7-bbbbbbbbbbbbbbbbbbbbbbbb' },
    });
    expect(response.status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    server.close();
    const spans = sdk.exporter.getFinishedSpans();
    const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER);
    expect(serverSpan?.name).toBe('GET /users/:id');
    expect(serverSpan?.attributes['faas.invocation_id']).toBe('1-64f6d6e7-bbbbbbbbbbbbbbbbbbbbbbbb');
    expect(spans.find((s) => s.name === 'load user')?.parentSpanContext?.spanId).toBe(serverSpan?.spanContext().spanId);
    sdk.exporter.reset();
  });

  it('a local async request: the attempt is a CONSUMER span in the accept span’s trace', async () => {
    const { koa, middleware } = app(true);
    const { url, server } = await serve(koa.callback());
    const response = await fetch(`${url}/jobs/9`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(response.status).toBe(202);
    const traceId = (response.headers.get('traceparent') ?? '').split('-')[1];
    await middleware.drain();
    server.close();
    const spans = sdk.exporter.getFinishedSpans();
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(consumer?.spanContext().traceId).toBe(traceId);
    expect(consumer?.attributes['http.route']).toBe('/jobs/:id');
    expect(spans.find((s) => s.name === 'work')?.parentSpanContext?.spanId).toBe(consumer?.spanContext().spanId);
    sdk.exporter.reset();
  });
});
