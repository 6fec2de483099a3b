import type { IncomingMessage, ServerResponse } from 'node:http';
import { context as otelContext, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createFcHandler,
  createTracing,
  extractFc2TraceContext,
  type FcHandlerOptions,
  type TracingRequestInfo,
} from '../src/index.js';
import { context, deferred, event, memoryLogger } from './helpers.js';
import {
  createSdk,
  idOf,
  only,
  PARENT_SPAN_ID,
  parentOf,
  requestIdOf,
  type Sdk,
  spanStrings,
  TRACE_ID,
  TRACEPARENT,
} from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

const ok: Listener = (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
};

const ENV = { FC_INSTANCE_ID: 'c-64f6d6e7-instance' };
const fcContext = { ...context, function: { name: 'demo', memory: 512 } };

function sync(app: Listener, extra: Partial<FcHandlerOptions> = {}) {
  const logger = memoryLogger();
  return { handler: createFcHandler(app, { logger, env: ENV, async: { mode: 'local' }, ...extra }), logger };
}

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

describe('sync invocation spans', () => {
  it('one SERVER span per invocation, child of the caller, with FaaS, cloud and HTTP attributes; cold start once', async () => {
    const { handler } = sync(ok);
    const e = event({
      method: 'GET',
      path: '/users/7',
      query: { token: 'abc' },
      headers: { traceparent: TRACEPARENT, 'User-Agent': 'curl/8.5', 'X-Forwarded-For': '203.0.113.9, 10.0.0.2' },
    });
    const result = await handler(e, fcContext);
    expect(result.statusCode).toBe(200);
    expect(result.headers).not.toHaveProperty('traceparent');
    await handler(event(), fcContext);

    const [first, second] = sdk.spans();
    expect(first?.name).toBe('GET');
    expect(first?.kind).toBe(SpanKind.SERVER);
    expect(first?.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(first)).toBe(PARENT_SPAN_ID);
    expect(first?.status.code).toBe(SpanStatusCode.UNSET);
    expect(first?.attributes).toEqual({
      'faas.trigger': 'http',
      'faas.invocation_id': requestIdOf(e),
      'faas.coldstart': true,
      'cloud.provider': 'alibaba_cloud',
      'cloud.platform': 'alibaba_cloud_fc',
      'cloud.region': 'cn-hangzhou',
      'cloud.account.id': '123',
      'cloud.resource_id': 'acs:fc:cn-hangzhou:123:functions/demo',
      'faas.name': 'demo',
      'faas.version': 'LATEST',
      'faas.instance': 'c-64f6d6e7-instance',
      'faas.max_memory': 512 * 1024 * 1024,
      'http.request.method': 'GET',
      'url.path': '/users/7',
      'url.scheme': 'http',
      'user_agent.original': 'curl/8.5',
      'client.address': '203.0.113.9',
      'http.response.status_code': 200,
      'fc_async.invocation_type': 'Sync',
      'fc_async.qualifier': 'LATEST',
    });
    expect(second?.attributes['faas.coldstart']).toBe(false);
    expect(parentOf(second)).toBeUndefined();
    expect(second?.spanContext().traceId).not.toBe(TRACE_ID);
  });

  it('a throw: ERROR with the exception recorded, and a generic 500 for the caller', async () => {
    const { handler } = sync(() => {
      throw new RangeError('boom');
    });
    const result = await handler(event({ method: 'POST', path: '/jobs' }), fcContext);
    expect(result.statusCode).toBe(500);
    const span = only(sdk.spans(), 'POST');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('RangeError');
    expect(span.attributes['http.response.status_code']).toBe(500);
    const exception = span.events.find((e) => e.name === 'exception');
    expect(exception?.attributes).toMatchObject({ 'exception.type': 'RangeError', 'exception.message': 'boom' });
  });

  it('a 5xx answer is ERROR with error.type the status; a 4xx is not an error of the server', async () => {
    const { handler } = sync((req, res) => {
      res.statusCode = req.url === '/down' ? 503 : 404;
      res.end();
    });
    await handler(event({ path: '/down' }), fcContext);
    await handler(event({ path: '/missing' }), fcContext);
    const [down, missing] = sdk.spans();
    expect(down?.status.code).toBe(SpanStatusCode.ERROR);
    expect(down?.attributes['error.type']).toBe('503');
    expect(down?.events).toEqual([]);
    expect(missing?.status.code).toBe(SpanStatusCode.UNSET);
    expect(missing?.attributes['http.response.status_code']).toBe(404);
  });

  it('a request fc-async rejects (400) still gets its span, with the status', async () => {
    const { handler } = sync(ok);
    const result = await handler(event({ headers: { 'X-Fc-Invocation-Type': 'Later' } }), fcContext);
    expect(result.statusCode).toBe(400);
    const span = only(sdk.spans(), 'GET');
    expect(span.attributes['http.response.status_code']).toBe(400);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("the app's own spans nest under the SERVER span, which trace.getActiveSpan() returns in the app", async () => {
    let active: string | undefined;
    const { handler } = sync(async (req, res) => {
      active = trace.getActiveSpan()?.spanContext().spanId;
      await trace.getTracer('app').startActiveSpan('db.query', async (span) => {
        await new Promise((r) => setTimeout(r, 1));
        span.end();
      });
      ok(req, res);
    });
    await handler(event({ path: '/a' }), fcContext);
    const server = only(sdk.spans(), 'GET');
    const db = only(sdk.spans(), 'db.query');
    expect(active).toBe(idOf(server));
    expect(parentOf(db)).toBe(idOf(server));
    expect(db.spanContext().traceId).toBe(server.spanContext().traceId);
  });

  it('two interleaved concurrent invocations never cross parents', async () => {
    const gates = { a: deferred(), b: deferred() };
    const { handler } = sync(async (req, res) => {
      const key = (req.url ?? '').slice(1) as 'a' | 'b';
      await gates[key].promise;
      trace.getTracer('app').startSpan(`work ${key}`).end();
      ok(req, res);
    });
    const a = event({ path: '/a' });
    const b = event({ path: '/b' });
    const pending = [handler(a, fcContext), handler(b, fcContext)];
    gates.b.resolve();
    await new Promise((r) => setTimeout(r, 5));
    gates.a.resolve();
    await Promise.all(pending);
    const spans = sdk.spans();
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
    const serverOf = (id: string) => servers.find((s) => s.attributes['faas.invocation_id'] === id);
    const serverA = serverOf(requestIdOf(a));
    const serverB = serverOf(requestIdOf(b));
    expect(serverA?.attributes['url.path']).toBe('/a');
    expect(serverB?.attributes['url.path']).toBe('/b');
    expect(parentOf(only(spans, 'work a'))).toBe(idOf(serverA));
    expect(parentOf(only(spans, 'work b'))).toBe(idOf(serverB));
    expect(serverA?.spanContext().traceId).not.toBe(serverB?.spanContext().traceId);
  });

  it('names the span {METHOD} {route} and sets http.route when the adapter tells the route', async () => {
    const handler = createFcHandler(ok, { logger: memoryLogger() }, { routeOf: () => '/users/:id' });
    await handler(event({ method: 'DELETE', path: '/users/7' }), fcContext);
    const span = only(sdk.spans(), 'DELETE /users/:id');
    expect(span.attributes['http.route']).toBe('/users/:id');
    expect(span.attributes['url.path']).toBe('/users/7');
  });

  it('a route reader that throws costs the span only its route', async () => {
    const handler = createFcHandler(
      ok,
      { logger: memoryLogger() },
      {
        routeOf: () => {
          throw new Error('no route');
        },
      },
    );
    expect((await handler(event(), fcContext)).statusCode).toBe(200);
    expect(only(sdk.spans(), 'GET').attributes['http.route']).toBeUndefined();
  });
});

describe('tracing options', () => {
  it('requestHook and responseHook see the request (credentials removed), invocation and response', async () => {
    const seen: Pick<TracingRequestInfo, 'kind' | 'request'>[] = [];
    let requestId: string | undefined;
    const { handler } = sync(ok, {
      redactHeaders: ['x-api-key'],
      tracing: {
        requestHook: (span, info) => {
          seen.push(structuredClone({ kind: info.kind, request: info.request }));
          requestId = info.invocation?.requestId;
          span.setAttribute('app.kind', info.kind);
        },
        responseHook: (span, info) => span.setAttribute('app.status', info.response?.statusCode ?? 0),
      },
    });
    await handler(
      event({ headers: { Authorization: 'Bearer t0ken', 'X-Api-Key': 'k3y', Accept: 'application/json' } }),
      fcContext,
    );
    expect(seen[0]?.kind).toBe('invocation');
    expect(seen[0]?.request.headers).toMatchObject({ accept: 'application/json' });
    expect(seen[0]?.request.headers).not.toHaveProperty('authorization');
    expect(seen[0]?.request.headers).not.toHaveProperty('x-api-key');
    expect(requestId).toMatch(/^1-/);
    expect(only(sdk.spans(), 'GET').attributes).toMatchObject({ 'app.kind': 'invocation', 'app.status': 200 });
  });

  it('responseHook sees the response without set-cookie nor redactHeaders, on invocation and attempt spans; the caller still gets them', async () => {
    const setsSecrets: Listener = (_req, res) => {
      res.setHeader('set-cookie', ['sid=SESSION-SECRET; Path=/']);
      res.setHeader('x-api-key', 'echoed-k3y');
      res.setHeader('x-kept', 'yes');
      res.end('{}');
    };
    const seen: { kind: string; headers: Record<string, unknown> | undefined }[] = [];
    const { handler } = sync(setsSecrets, {
      redactHeaders: ['x-api-key'],
      tracing: {
        responseHook: (_span, info) => seen.push({ kind: info.kind, headers: info.response?.headers }),
      },
    });
    const result = await handler(event(), fcContext);
    await handler(event({ headers: { 'x-fc-invocation-type': 'Async' } }), fcContext);
    await handler.drain();
    await handler.close();
    expect(result.headers?.['set-cookie']).toBe('sid=SESSION-SECRET; Path=/');
    const answered = seen.filter((s) => s.headers?.['x-kept'] === 'yes').map((s) => s.kind);
    expect(answered).toEqual(['invocation', 'attempt']);
    expect(JSON.stringify(seen)).not.toMatch(/SESSION-SECRET|echoed-k3y|set-cookie/);
  });

  it('hooks that throw or reject are logged and never break the request', async () => {
    const { handler, logger } = sync(ok, {
      tracing: {
        requestHook: () => {
          throw new Error('hook bug');
        },
        responseHook: async () => {
          throw new Error('async hook bug');
        },
      },
    });
    const result = await handler(event(), fcContext);
    expect(result.statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 0));
    expect(sdk.spans()).toHaveLength(1);
    const warnings = logger.entries.filter((e) => e.level === 'warn').map((e) => [e.message, e.fields?.hook]);
    expect(warnings).toEqual([
      ['tracing hook threw', 'requestHook'],
      ['tracing hook failed', 'responseHook'],
    ]);
  });

  it('tracerProvider: spans go to the given provider, none to the global one', async () => {
    const own = createSdk({ global: false });
    const { handler } = sync(ok, { tracing: { tracerProvider: own.provider } });
    await handler(event(), fcContext);
    expect(own.spans().map((s) => s.name)).toEqual(['GET']);
    expect(sdk.spans()).toEqual([]);
  });

  it('validates eagerly with the option name, and never writes defaults back', () => {
    const tracing = { requestHook: undefined };
    createFcHandler(ok, { tracing });
    expect(tracing).toEqual({ requestHook: undefined });
    expect(() => createFcHandler(ok, { tracing: 5 as never })).toThrow(
      'Expected `tracing` to be an object, got `number`',
    );
    expect(() => createFcHandler(ok, { tracing: { flushTimeoutMs: -1 } })).toThrow(
      'Expected `tracing.flushTimeoutMs` to be a number from 0 and up, got `-1`',
    );
    expect(() => createFcHandler(ok, { tracing: { responseHook: 'x' as never } })).toThrow(
      'Expected `tracing.responseHook` to be a function, got `string`',
    );
    expect(() => createFcHandler(ok, { tracing: { tracerProvider: {} as never } })).toThrow(
      'Expected `tracing.tracerProvider` to be a TracerProvider (with a getTracer() method)',
    );
    expect(() => createFcHandler(ok, { tracing: { newTracePerAttempt: 'yes' as never } })).toThrow(
      'Expected `tracing.newTracePerAttempt` to be a boolean, got `string`',
    );
  });

  it('refuses an unknown tracing option, such as a misspelt `enabled`', () => {
    expect(() => createFcHandler(ok, { tracing: { enable: false } as never })).toThrow(
      new TypeError('Unknown option `tracing.enable`'),
    );
  });

  it('baggage from the request reaches the app', async () => {
    let member: string | undefined;
    const { handler } = sync((req, res) => {
      member = propagation.getBaggage(otelContext.active())?.getEntry('tenant')?.value;
      ok(req, res);
    });
    await handler(event({ headers: { traceparent: TRACEPARENT, baggage: 'tenant=acme' } }), fcContext);
    expect(member).toBe('acme');
  });
});

describe('FC 2.0 trace context', () => {
  const JAEGER_TRACE = '0000000000000000a3ce929d0e0e4736';
  it('extractFc2TraceContext reads the Jaeger header FC 2.0 passes', async () => {
    const { handler } = sync(ok, { tracing: { extractContext: extractFc2TraceContext } });
    await handler(
      event({ headers: { 'X-Fc-Tracing-Opentracing-Span-Context': 'a3ce929d0e0e4736:00f067aa0ba902b7:0:1' } }),
      fcContext,
    );
    const span = only(sdk.spans(), 'GET');
    expect(span.spanContext().traceId).toBe(JAEGER_TRACE);
    expect(parentOf(span)).toBe(PARENT_SPAN_ID);
  });

  it('… or context.tracing, with its baggage', async () => {
    let tenant: string | undefined;
    const { handler } = sync(
      (req, res) => {
        tenant = propagation.getBaggage(otelContext.active())?.getEntry('tenant')?.value;
        ok(req, res);
      },
      { tracing: { extractContext: extractFc2TraceContext } },
    );
    await handler(event(), {
      ...fcContext,
      tracing: {
        openTracingSpanContext: 'a3ce929d0e0e4736:00f067aa0ba902b7:0:1',
        openTracingSpanBaggages: { tenant: 'acme' },
      },
    });
    expect(only(sdk.spans(), 'GET').spanContext().traceId).toBe(JAEGER_TRACE);
    expect(tenant).toBe('acme');
  });

  it('a malformed Jaeger context or an extractor that throws starts a new trace', async () => {
    const { handler } = sync(ok, { tracing: { extractContext: extractFc2TraceContext } });
    await handler(event({ headers: { 'X-Fc-Tracing-Opentracing-Span-Context': 'zz:yy:0:1' } }), fcContext);
    const broken = sync(ok, {
      tracing: {
        extractContext: () => {
          throw new Error('bad extractor');
        },
      },
    });
    await broken.handler(event(), fcContext);
    expect(sdk.spans().map(parentOf)).toEqual([undefined, undefined]);
    expect(broken.logger.entries.some((e) => e.message.startsWith('tracing extractContext threw'))).toBe(true);
  });
});

describe('without an SDK', () => {
  it('no span, no traceparent, nothing changes; isEnabled() says so', async () => {
    await sdk.uninstall();
    const tracing = createTracing();
    expect(tracing.isEnabled()).toBe(false);
    expect(tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} })).toBeUndefined();
    let active: unknown = 'unset';
    const { handler } = sync((req, res) => {
      active = trace.getActiveSpan();
      ok(req, res);
    });
    const result = await handler(event(), fcContext);
    expect(result.statusCode).toBe(200);
    expect(active).toBeUndefined();
    expect(sdk.spans()).toEqual([]);
    sdk = createSdk();
    expect(tracing.isEnabled()).toBe(true);
  });
});

describe('secrets', () => {
  it('no credential, cookie or authorization value appears in any span', async () => {
    const secrets = {
      'X-Fc-Access-Key-Id': 'SECRET-AK-ID',
      'X-Fc-Access-Key-Secret': 'SECRET-AK-SECRET',
      'X-Fc-Security-Token': 'SECRET-STS-TOKEN',
      Authorization: 'Bearer SECRET-BEARER',
      'Proxy-Authorization': 'Basic SECRET-PROXY',
      Cookie: 'session=SECRET-COOKIE',
    };
    const { handler } = sync(
      (req, res) => {
        if (req.url === '/fail') throw new Error('failed');
        ok(req, res);
      },
      {
        tracing: {
          requestHook: (span, info) => span.setAttribute('app.headers', JSON.stringify(info.request.headers)),
        },
        async: { mode: 'local', maxAsyncRetryAttempts: 1, backoff: { baseMs: 1, maxMs: 1 } },
        destinations: { onFailure: () => undefined, onSuccess: () => undefined },
      },
    );
    await handler(event({ headers: secrets }), fcContext);
    await handler(event({ path: '/fail', headers: secrets }), fcContext);
    await handler(event({ headers: { ...secrets, 'X-Fc-Invocation-Type': 'Async' } }), fcContext);
    await handler(event({ path: '/fail', headers: { ...secrets, 'X-Fc-Invocation-Type': 'Async' } }), fcContext);
    await handler.drain();
    const spans = sdk.spans();
    expect(spans.length).toBeGreaterThan(8);
    const text = spans.flatMap(spanStrings).join('\n');
    expect(text).toContain('app.headers');
    for (const value of Object.values(secrets)) expect(text).not.toContain(value.split(' ').pop());
  });
});
