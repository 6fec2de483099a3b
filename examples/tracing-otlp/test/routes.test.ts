import { fcHttpEvent } from '@fc-async/core';
import { createHandler as expressHandler } from '@fc-async/express';
import { createHandler as fastifyHandler } from '@fc-async/fastify';
import { createHandler as koaHandler } from '@fc-async/koa';
import Router from '@koa/router';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';

let n = 0;
function fcEvent(method: string, path: string, headers: Record<string, string> = {}) {
  n++;
  return fcHttpEvent({
    method,
    url: path,
    headers,
    requestId: `1-64f6d6e7-${String(n).padStart(24, '0')}`,
    sourceIp: '203.0.113.7',
  });
}

type Handler = ((event: unknown, context?: unknown) => Promise<{ statusCode: number }>) & { drain(): Promise<void> };

/** The same routes on each framework: `/health` at the root, `/users/:id` under an `/api` prefix. */
const apps: Record<string, (options: object) => Handler> = {
  express: (options) => {
    const app = express();
    const api = express.Router();
    api.get('/users/:id', (_req, res) => void res.json({ ok: true }));
    app.use('/api', api);
    app.get('/health', (_req, res) => void res.end('ok'));
    return expressHandler(app, options) as unknown as Handler;
  },
  koa: (options) => {
    const app = new Koa();
    const router = new Router();
    const api = new Router({ prefix: '/api' });
    api.get('/users/:id', (ctx) => {
      ctx.body = { ok: true };
    });
    router.get('/health', (ctx) => {
      ctx.body = 'ok';
    });
    app.use(router.routes()).use(api.routes());
    return koaHandler(app, options) as unknown as Handler;
  },
  fastify: (options) => {
    const app = Fastify();
    app.get('/health', async () => 'ok');
    app.register(
      async (api) => {
        api.get('/users/:id', async () => ({ ok: true }));
      },
      { prefix: '/api' },
    );
    return fastifyHandler(app, options) as unknown as Handler;
  },
};

describe.each(Object.keys(apps))('%s: spans are named by the route the framework matched', (name) => {
  const setup = () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const handler = (apps[name] as (options: object) => Handler)({
      tracing: { tracerProvider },
      env: {},
      async: { mode: 'local' },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    return { handler, spans: () => exporter.getFinishedSpans() };
  };

  it('{METHOD} {route} and http.route, mount prefixes included; no route, only the method', async () => {
    const { handler, spans } = setup();
    expect((await handler(fcEvent('GET', '/api/users/7'))).statusCode).toBe(200);
    expect((await handler(fcEvent('GET', '/health'))).statusCode).toBe(200);
    expect((await handler(fcEvent('GET', '/nowhere'))).statusCode).toBe(404);
    expect(spans().map((s) => [s.name, s.attributes['http.route']])).toEqual([
      ['GET /api/users/:id', '/api/users/:id'],
      ['GET /health', '/health'],
      ['GET', undefined],
    ]);
  });

  it('an async attempt carries the route too', async () => {
    const { handler, spans } = setup();
    await handler(fcEvent('GET', '/api/users/7', { 'X-Fc-Invocation-Type': 'Async' }));
    await handler.drain();
    const attempt = spans().find((s) => s.kind === SpanKind.CONSUMER);
    expect(attempt?.attributes).toMatchObject({ 'http.route': '/api/users/:id', 'http.response.status_code': 200 });
  });
});
