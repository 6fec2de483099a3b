// Behaviour of tracing that no test held (a hand-made mutation audit, session 19): the flush bound,
// the middleware API's span ending, method names, FC 2.0's Jaeger context, the emulator's stand-in
// region, FC's version id, the attempt's route, spans made without a context manager or propagator,
// the middleware's flushes in platform mode, and the engine hooks on records made elsewhere.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AttemptOutcome,
  createFcHandler,
  createFcRuntime,
  createTracing,
  type Destination,
  type DestinationRecord,
  extractFc2TraceContext,
  getInvocation,
  type Invocation,
  type TaskRecord,
  type TracingRequestInfo,
  type TracingResponseInfo,
  writeBridgeResponse,
} from '../src/index.js';
import { asyncEvent, context, deferred, event, memoryLogger } from './helpers.js';
import { createSdk, idOf, only, PARENT_SPAN_ID, parentOf, type Sdk, TRACE_ID, TRACEPARENT } from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

const ok: Listener = (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
};

const task = {
  taskId: 'm19',
  requestId: '1-64f6d6e7-0000000000000000000000m19',
  status: 'Running',
  functionArn: 'acs:fc:cn-hangzhou:123:functions/demo',
  qualifier: 'LATEST',
  startedTime: 0,
  alreadyRetriedTimes: 0,
  events: [],
  payload: { method: 'POST', url: '/jobs', headers: {}, body: '', isBase64Encoded: false },
  acceptedAt: 0,
  attempts: 1,
} as unknown as TaskRecord;

const record: DestinationRecord = {
  timestamp: 1,
  requestContext: {
    requestId: task.requestId,
    functionArn: task.functionArn,
    condition: '',
    approximateInvokeCount: 1,
  },
  requestPayload: '{}',
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: 'ok',
};

const success: AttemptOutcome = { kind: 'success', response: { statusCode: 200, headers: {}, body: 'ok' } };

let sdk: Sdk | undefined;
afterEach(async () => {
  await sdk?.uninstall();
  sdk = undefined;
});

/** A tracing on a provider of its own: no global SDK, no context manager. */
function ownTracing(options: Parameters<typeof createTracing>[0] = {}) {
  sdk = createSdk({ global: false });
  return createTracing({ tracerProvider: sdk.provider, ...options }, { logger: memoryLogger() });
}

describe('tracing.flush()', () => {
  /** A provider whose forceFlush never settles, counting calls. */
  function hanging() {
    sdk = createSdk({ global: false });
    const provider = { getTracer: sdk.provider.getTracer.bind(sdk.provider), calls: 0, forceFlush: () => {} };
    provider.forceFlush = () => {
      provider.calls++;
      return new Promise<void>(() => undefined);
    };
    return provider;
  }

  it('flushTimeoutMs 0 skips the flush', async () => {
    const provider = hanging();
    await createTracing({ tracerProvider: provider, flushTimeoutMs: 0 }, { logger: memoryLogger() }).flush();
    expect(provider.calls).toBe(0);
  });

  it('a hanging flush is given up once flushTimeoutMs has passed on the clock', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const provider = hanging();
      const logger = memoryLogger();
      let done = false;
      const flushed = createTracing({ tracerProvider: provider, flushTimeoutMs: 300 }, { logger })
        .flush()
        .then(() => {
          done = true;
        });
      await vi.advanceTimersByTimeAsync(299);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await Promise.race([flushed, new Promise((resolve) => setImmediate(resolve))]);
      expect(done).toBe(true);
      expect(provider.calls).toBe(1);
      expect(logger.entries.map((e) => e.message)).toEqual(['span flush timed out']);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('InvocationSpan.end (custom-runtime middleware)', () => {
  it('an error without a status code (the app threw, no answer) ends the span ERROR with the exception', () => {
    const tracing = ownTracing();
    tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} })?.end({ error: new TypeError('bad') });
    const [span] = sdk?.spans() ?? [];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('TypeError');
    expect(span?.events.map((e) => e.attributes?.['exception.message'])).toEqual(['bad']);
  });

  it('a thrown string keeps its text as the exception message', () => {
    const tracing = ownTracing();
    tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} })?.end({ statusCode: 500, error: 'db down' });
    const [span] = sdk?.spans() ?? [];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.events.map((e) => e.attributes?.['exception.message'])).toEqual(['db down']);
  });

  it('a function error answer past 64 KiB is not read into the span: ERROR with the status as error.type', () => {
    const tracing = ownTracing();
    const body = JSON.stringify({ errorMessage: 'x'.repeat(70 * 1024), errorType: 'Huge' });
    const response = { statusCode: 502, headers: { 'x-fc-error-type': 'UnhandledInvocationError' }, body };
    tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} })?.end({ response });
    const [span] = sdk?.spans() ?? [];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('502');
    expect(span?.events).toEqual([]);
  });

  it('ends once: a second end() (finish, then close) calls no hook again and changes nothing', () => {
    const seen: TracingResponseInfo[] = [];
    const tracing = ownTracing({ responseHook: (_span, info) => seen.push(info) });
    const span = tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} });
    span?.end({ statusCode: 200 });
    span?.end({ statusCode: 500, error: new Error('late') });
    const spans = sdk?.spans() ?? [];
    expect(spans).toHaveLength(1);
    expect(spans[0]?.status.code).toBe(SpanStatusCode.UNSET);
    expect(spans[0]?.attributes['http.response.status_code']).toBe(200);
    expect(seen).toHaveLength(1);
  });
});

describe('HTTP method of the SERVER span', () => {
  it('an unknown method: named HTTP, http.request.method _OTHER, the original kept', () => {
    const tracing = ownTracing();
    tracing.startInvocationSpan({ method: 'PURGE', url: '/cache', headers: {} })?.end({ statusCode: 200 });
    const [span] = sdk?.spans() ?? [];
    expect(span?.name).toBe('HTTP');
    expect(span?.attributes).toMatchObject({
      'http.request.method': '_OTHER',
      'http.request.method_original': 'PURGE',
    });
  });

  it('a known method in lower case is the known method', () => {
    const tracing = ownTracing();
    tracing.startInvocationSpan({ method: 'get', url: '/', headers: {} })?.end({ statusCode: 200 });
    const [span] = sdk?.spans() ?? [];
    expect(span?.name).toBe('GET');
    expect(span?.attributes['http.request.method']).toBe('GET');
    expect(span?.attributes).not.toHaveProperty('http.request.method_original');
  });
});

describe('url.path of the SERVER span', () => {
  it('an absolute-form target (GET http://user:pass@host/path, as a client through a proxy sends): the path alone', () => {
    const tracing = ownTracing();
    const url = 'http://admin:s3cret@orders.example.com:9000/orders/7?token=abc';
    tracing.startInvocationSpan({ method: 'GET', url, headers: {} })?.end({ statusCode: 200 });
    tracing
      .startInvocationSpan({ method: 'GET', url: 'HTTPS://orders.example.com', headers: {} })
      ?.end({ statusCode: 200 });
    const spans = sdk?.spans() ?? [];
    expect(spans.map((s) => s.attributes['url.path'])).toEqual(['/orders/7', '/']);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('s3cret');
  });
});

describe('extractFc2TraceContext', () => {
  const JAEGER = 'x-fc-tracing-opentracing-span-context';
  const parent = (headers: Record<string, string>) => trace.getSpanContext(extractFc2TraceContext({ headers }));

  it("a W3C traceparent wins over FC 2.0's Jaeger context", () => {
    sdk = createSdk();
    const got = parent({ traceparent: TRACEPARENT, [JAEGER]: 'a3ce929d0e0e4736:0000000000000abc:0:1' });
    expect(got).toMatchObject({ traceId: TRACE_ID, spanId: PARENT_SPAN_ID });
  });

  it("keeps the Jaeger sampled flag: a caller's unsampled trace stays unsampled", () => {
    sdk = createSdk();
    expect(parent({ [JAEGER]: 'a3ce929d0e0e4736:00f067aa0ba902b7:0:0' })?.traceFlags).toBe(TraceFlags.NONE);
    expect(parent({ [JAEGER]: 'a3ce929d0e0e4736:00f067aa0ba902b7:0:1' })?.traceFlags).toBe(TraceFlags.SAMPLED);
  });

  it('reads a URL-encoded Jaeger context', () => {
    sdk = createSdk();
    expect(parent({ [JAEGER]: 'a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A1' })).toMatchObject({
      traceId: '0000000000000000a3ce929d0e0e4736',
      spanId: PARENT_SPAN_ID,
    });
  });
});

describe('SERVER span attributes from FC', () => {
  it("the emulator's stand-in region (local) is no cloud.region, on the SERVER span as on its tasks", async () => {
    sdk = createSdk();
    const handler = createFcHandler(ok, { logger: memoryLogger(), env: {}, async: { mode: 'local' } });
    await handler(asyncEvent({ method: 'POST', taskId: 'here' }), { ...context, region: 'local' });
    await handler.drain();
    const spans = sdk.spans();
    expect(spans.map((s) => s.name).sort()).toEqual(['POST', 'process demo', 'send demo']);
    for (const span of spans) {
      expect(span.attributes['faas.name']).toBe('demo');
      expect(Object.keys(span.attributes).filter((k) => k.startsWith('cloud.region'))).toEqual([]);
    }
  });

  it('faas.version is the version FC ran (service.versionId), not the alias that named it', async () => {
    sdk = createSdk();
    const handler = createFcHandler(ok, { logger: memoryLogger(), env: {} });
    await handler(event({ headers: { 'x-fc-qualifier': 'prod' } }), { ...context, service: { versionId: '3' } });
    const [span] = sdk.spans();
    expect(span?.attributes['faas.version']).toBe('3');
    expect(span?.attributes['fc_async.qualifier']).toBe('prod');
  });
});

describe('the route an adapter tells', () => {
  it("sets http.route on each attempt's CONSUMER span (the 202 ran no app: its span has none)", async () => {
    sdk = createSdk();
    const handler = createFcHandler(
      ok,
      { logger: memoryLogger(), env: {}, async: { mode: 'local' } },
      { routeOf: () => '/jobs/:id' },
    );
    await handler(asyncEvent({ method: 'POST', path: '/jobs/7', taskId: 'routed' }), context);
    await handler.drain();
    const spans = sdk.spans();
    expect(only(spans, 'POST').attributes).not.toHaveProperty('http.route');
    expect(only(spans, 'process demo').attributes).toMatchObject({
      'http.route': '/jobs/:id',
      'url.path': '/jobs/7',
      'http.response.status_code': 200,
    });
  });
});

describe('tracing.tracerProvider without a context manager nor a global propagator', () => {
  it("fc-async's spans still nest: SERVER → PRODUCER → CONSUMER (tracestate kept), and the INTERNAL deliver span", async () => {
    sdk = createSdk({ global: false });
    const caller = {
      traceId: TRACE_ID,
      spanId: PARENT_SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: createTraceState('vendor=abc'),
    };
    const handler = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local' },
      tracing: { tracerProvider: sdk.provider, extractContext: () => trace.setSpanContext(ROOT_CONTEXT, caller) },
      destinations: { onSuccess: () => undefined },
    });
    const result = await handler(asyncEvent({ method: 'POST', taskId: 'nested' }), context);
    expect(result.statusCode).toBe(202);
    await handler.drain();
    const spans = sdk.spans();
    const server = only(spans, 'POST');
    const producer = only(spans, 'send demo');
    const consumer = only(spans, 'process demo');
    const deliver = only(spans, 'deliver onSuccess');
    expect(parentOf(producer)).toBe(idOf(server));
    expect(parentOf(consumer)).toBe(idOf(producer));
    expect(parentOf(deliver)).toBe(idOf(producer));
    expect(deliver.kind).toBe(SpanKind.INTERNAL);
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([TRACE_ID]));
    expect(parentOf(server)).toBe(PARENT_SPAN_ID);
    expect(consumer.spanContext().traceState?.serialize()).toBe('vendor=abc');
  });
});

describe('custom-runtime middleware, platform mode', () => {
  it("an async invocation's spans are flushed before its answer goes out (FC may freeze the instance then)", async () => {
    sdk = createSdk({ global: false });
    const flush = sdk.provider.forceFlush.bind(sdk.provider);
    let flushes = 0;
    sdk.provider.forceFlush = () => {
      flushes++;
      return flush();
    };
    const runtime = createFcRuntime({
      env: { FC_FUNCTION_NAME: 'demo', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' },
      logger: memoryLogger(),
      tracing: { tracerProvider: sdk.provider },
      async: { maxAsyncRetryAttempts: 1 },
    });
    const server = createServer(async (req, res) => {
      const answer = await runtime.handle(req, { app: server, listener: () => ok }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => ok(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': 'rt-m19' };
      const r = await fetch(`http://127.0.0.1:${port}/jobs`, { method: 'POST', headers });
      expect(r.status).toBe(200);
      await r.text();
      expect(flushes).toBe(1);
      expect(only(sdk.spans(), 'POST').attributes['faas.invocation_id']).toBe('rt-m19');
    } finally {
      server.close();
      await runtime.close();
    }
  });

  it('an async invocation FC cuts off (a stop, its timeout): its ERROR span is flushed as well', async () => {
    sdk = createSdk({ global: false });
    const flush = sdk.provider.forceFlush.bind(sdk.provider);
    let flushes = 0;
    sdk.provider.forceFlush = () => {
      flushes++;
      return flush();
    };
    const runtime = createFcRuntime({
      env: { FC_FUNCTION_NAME: 'demo', FC_REGION: 'cn-hangzhou' },
      logger: memoryLogger(),
      tracing: { tracerProvider: sdk.provider },
    });
    const entered = deferred();
    const app: Listener = (req, res) => {
      entered.resolve();
      getInvocation(req)?.signal.addEventListener('abort', () => {
        res.statusCode = 500;
        res.end('stopped');
      });
    };
    const server = createServer(async (req, res) => {
      const answer = await runtime.handle(req, { app: server, listener: () => app }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => app(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const abort = new AbortController();
      const call = fetch(`http://127.0.0.1:${port}/slow`, {
        method: 'POST',
        headers: { 'x-fc-request-id': 'cut-m19', 'x-fc-invocation-type': 'Async' },
        signal: abort.signal,
      }).catch((error: Error) => error.name);
      await entered.promise;
      abort.abort();
      expect(await call).toBe('AbortError');
      await expect.poll(() => sdk?.spans().length).toBe(1);
      expect(sdk.spans()[0]?.attributes['error.type']).toBe('ConnectionClosed');
      await expect.poll(() => flushes).toBe(1);
    } finally {
      server.close();
      await runtime.close();
    }
  });
});

describe('destinations while tracing', () => {
  it('an unlabelled destination is still named by its function in the delivery log', async () => {
    sdk = createSdk();
    const logger = memoryLogger();
    const notifyOps: Destination = Object.assign(
      async function notifyOps() {
        throw new Error('ops pager down');
      },
      { maxRetries: 0 },
    );
    const handler = createFcHandler(ok, {
      logger,
      env: {},
      async: { mode: 'local' },
      destinations: { onSuccess: notifyOps },
    });
    await handler(asyncEvent({ taskId: 'named' }), context);
    await handler.drain();
    const failed = logger.entries.filter((e) => e.message.startsWith('fc-async: destination delivery failed'));
    expect(failed.map((e) => e.fields?.destination)).toEqual(['function:notifyOps']);
    expect(only(sdk.spans(), 'deliver onSuccess').attributes['fc_async.destination.label']).toBe('function:notifyOps');
  });
});

describe('tracing.engineHooks on records made elsewhere', () => {
  it('a task accepted outside any invocation span still exports its PRODUCER span', () => {
    const tracing = ownTracing();
    const kept = tracing.engineHooks.accepted?.(task, {} as Invocation);
    const producer = only(sdk?.spans() ?? [], 'send demo');
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(kept?.traceContext?.traceparent).toContain(idOf(producer));
  });

  it('newTracePerAttempt, a task without trace context: its destination call nests in the final attempt', async () => {
    const tracing = ownTracing({ newTracePerAttempt: true });
    const hooks = tracing.engineHooks;
    const plain = { ...task, traceContext: undefined } as TaskRecord;
    await hooks.attempt?.(plain, 0, async () => hooks.attemptEnded?.(plain, 0, success, false));
    hooks.attemptWritten?.(plain, 0, true);
    const wrapped = hooks.destination?.(plain, 'onSuccess', '', () => undefined, undefined) as Destination;
    await hooks.delivery?.(plain, 'onSuccess', '', async () => wrapped(record));
    const spans = sdk?.spans() ?? [];
    expect(parentOf(only(spans, 'deliver onSuccess'))).toBe(idOf(only(spans, 'process demo')));
  });

  it('an attempt whose run rejects (a record the engine cannot replay) ends ERROR with the exception', async () => {
    const tracing = ownTracing();
    const run = () => Promise.reject(new RangeError('corrupt payload'));
    await expect(tracing.engineHooks.attempt?.(task, 0, run)).rejects.toThrow('corrupt payload');
    const span = only(sdk?.spans() ?? [], 'process demo');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('RangeError');
    expect(span.events.map((e) => e.attributes?.['exception.message'])).toEqual(['corrupt payload']);
  });

  it("an attempt's hooks never see credentials, also in a record stored with them", async () => {
    const requests: TracingRequestInfo['request'][] = [];
    const tracing = ownTracing({
      requestHook: (_span, info) => requests.push(info.request),
      responseHook: (_span, info) => requests.push(info.request),
    });
    const raw = {
      ...task,
      payload: {
        ...task.payload,
        headers: {
          authorization: 'Bearer s3cret',
          cookie: 'sid=s3cret',
          'x-fc-access-key-secret': 's3cret',
          accept: '*/*',
        },
      },
    } as TaskRecord;
    await tracing.engineHooks.attempt?.(raw, 0, async () => undefined);
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(request.headers).toEqual({ accept: '*/*' });
    }
  });
});
