import type { IncomingMessage, ServerResponse } from 'node:http';
import Router from '@koa/router';
import { SpanKind, trace } from '@opentelemetry/api';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AdapterHooks, createFcHandler } from '../src/index.js';
import { asyncEvent, context, event, memoryLogger } from './helpers.js';
import { createSdk, idOf, only, parentOf, requestIdOf, type Sdk } from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Where the app's own span goes: inside the route, after an await, as real handlers do. */
async function work(): Promise<{ active: string | undefined }> {
  const active = trace.getActiveSpan()?.spanContext().spanId;
  await new Promise((r) => setTimeout(r, 1));
  trace.getTracer('app').startSpan('app.work').end();
  return { active };
}

/** The same route on each framework, as the Node listener (and hooks) the core runs. */
const frameworks: Record<string, () => { listener: Listener; hooks?: AdapterHooks }> = {
  express: () => {
    const app = express();
    app.post('/orders/:id', async (_req, res) => {
      res.json(await work());
    });
    return { listener: (req, res) => app(req, res) };
  },
  koa: () => {
    const app = new Koa();
    const router = new Router();
    router.post('/orders/:id', async (ctx) => {
      ctx.body = await work();
    });
    app.use(router.routes());
    return { listener: app.callback() };
  },
  fastify: () => {
    const app = Fastify();
    app.post('/orders/:id', async () => work());
    return { listener: (req, res) => app.routing(req, res), hooks: { ready: () => Promise.resolve(app.ready()) } };
  },
};

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

describe.each(Object.keys(frameworks))('%s: a span the app creates in a route nests correctly', (name) => {
  const make = () => {
    const { listener, hooks } = (frameworks[name] as () => { listener: Listener; hooks?: AdapterHooks })();
    return createFcHandler(
      listener,
      { logger: memoryLogger(), env: {}, async: { mode: 'local', backoff: { baseMs: 1, maxMs: 1 } } },
      hooks,
    );
  };

  it('sync: under the SERVER span, which is the active span in the route', async () => {
    const handler = make();
    const result = await handler(event({ method: 'POST', path: '/orders/7' }), context);
    expect(result.statusCode).toBe(200);
    const server = only(sdk.spans(), 'POST');
    expect(JSON.parse(result.body)).toEqual({ active: idOf(server) });
    expect(parentOf(only(sdk.spans(), 'app.work'))).toBe(idOf(server));
  });

  it('async: under the CONSUMER span of the attempt, which is the active span in the route', async () => {
    const handler = make();
    await handler(asyncEvent({ method: 'POST', path: '/orders/7', taskId: `t_${name}` }), context);
    await handler.drain();
    const spans = sdk.spans();
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    const task = await handler.tasks.get(`t_${name}`);
    expect(JSON.parse(task?.returnPayload ?? '{}')).toEqual({ active: idOf(consumer) });
    expect(parentOf(only(spans, 'app.work'))).toBe(idOf(consumer));
    expect(consumer?.spanContext().traceId).toBe(task?.traceId);
  });

  it('two interleaved invocations keep their own parents', async () => {
    const handler = make();
    const events = [event({ method: 'POST', path: '/orders/1' }), event({ method: 'POST', path: '/orders/2' })];
    const results = await Promise.all(events.map((e) => handler(e, context)));
    const spans = sdk.spans();
    for (const [i, e] of events.entries()) {
      const server = spans.find((s) => s.attributes['faas.invocation_id'] === requestIdOf(e));
      expect(JSON.parse((results[i] as { body: string }).body)).toEqual({ active: idOf(server) });
    }
    const works = spans.filter((s) => s.name === 'app.work').map(parentOf);
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER).map(idOf);
    expect(new Set(works)).toEqual(new Set(servers));
    expect(servers).toHaveLength(2);
  });
});
