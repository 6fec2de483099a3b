import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createFcHandler,
  createFcRuntime,
  type DestinationRecord,
  type TracingOptions,
  writeBridgeResponse,
} from '../src/index.js';
import { deferred, event, memoryLogger, TRANSCODE_CLOUD, tick } from './helpers.js';
import { createSdk, idOf, only, PARENT_SPAN_ID, parentOf, type Sdk, TRACE_ID, TRACEPARENT } from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

const FC_ENV = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const fcContext = {
  requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  region: 'cn-hangzhou',
  accountId: '123',
  function: { name: 'transcode' },
};

const ok: Listener = (_req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end('done');
};

function setup(app: Listener, tracing?: TracingOptions) {
  const logger = memoryLogger();
  const delivered: DestinationRecord[] = [];
  const handler = createFcHandler(app, {
    env: FC_ENV,
    logger,
    tracing,
    async: { maxAsyncRetryAttempts: 1 },
    destinations: { onSuccess: (r) => void delivered.push(r), onFailure: (r) => void delivered.push(r) },
  });
  return { handler, logger, delivered };
}

/** A span processor whose forceFlush waits for `release` (and counts calls). */
function flushProbe(exporter: InMemorySpanExporter) {
  const gate = deferred();
  const called = deferred();
  const probe = {
    calls: 0,
    spansAtFlush: -1,
    /** Resolves at the first forceFlush() call. */
    flushed: called.promise,
    release: () => gate.resolve(),
    forceFlush: () => {
      probe.calls++;
      probe.spansAtFlush = exporter.getFinishedSpans().length;
      called.resolve();
      return gate.promise;
    },
    onStart() {},
    onEnd() {},
    shutdown: () => Promise.resolve(),
  };
  return probe;
}

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

describe('platform mode (on FC)', () => {
  it('the SERVER span continues the incoming context; async attributes come from FC headers', async () => {
    const { handler } = setup(ok);
    const result = await handler(
      event({
        method: 'POST',
        path: '/jobs',
        headers: { traceparent: TRACEPARENT, 'X-Fc-Retry-Count': '1', 'X-Fc-Async-Task-Id': 'job_7' },
      }),
      fcContext,
    );
    expect(result.statusCode).toBe(200);
    const spans = sdk.spans();
    const server = only(spans, 'POST');
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(server)).toBe(PARENT_SPAN_ID);
    expect(server.attributes).toMatchObject({
      'faas.invocation_id': fcContext.requestId,
      'fc_async.invocation_type': 'Async',
      'fc_async.task_id': 'job_7',
      'fc_async.attempt': 1,
      'faas.name': 'transcode',
      'cloud.region': 'cn-hangzhou',
    });
    const delivery = only(spans, 'deliver onSuccess');
    expect(parentOf(delivery)).toBe(idOf(server));
    expect(delivery.attributes['faas.invocation_id']).toBe(fcContext.requestId);
    // The destination span names the same function, in the same cloud, as the invocation's.
    const cloud = TRANSCODE_CLOUD;
    expect(server.attributes).toMatchObject(cloud);
    expect(delivery.attributes).toMatchObject(cloud);
  });

  it('a failed final attempt: SERVER span ERROR, the onFailure call traced, and the handler throws for FC', async () => {
    const { handler, delivered } = setup((_req, res) => {
      res.statusCode = 502;
      res.end();
    });
    await expect(handler(event({ headers: { 'X-Fc-Retry-Count': '1' } }), fcContext)).rejects.toMatchObject({
      code: 'UnhandledInvocationError',
    });
    expect(delivered).toHaveLength(1);
    const server = only(sdk.spans(), 'GET');
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['error.type']).toBe('502');
    expect(only(sdk.spans(), 'deliver onFailure').attributes['fc_async.condition']).toBe('UnhandledInvocationError');
  });

  it('without a context manager, a destination span is still the child of its invocation (a provider given)', async () => {
    await sdk.uninstall(); // no global context manager, propagator or provider
    const own = createSdk({ global: false });
    try {
      const { handler, delivered } = setup(ok, { tracerProvider: own.provider });
      const headers = { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Retry-Count': '1' };
      expect((await handler(event({ method: 'POST', path: '/jobs', headers }), fcContext)).statusCode).toBe(200);
      expect(delivered).toHaveLength(1);
      const server = only(own.spans(), 'POST');
      const delivery = only(own.spans(), 'deliver onSuccess');
      expect([delivery.spanContext().traceId, parentOf(delivery)]).toEqual([
        server.spanContext().traceId,
        idOf(server),
      ]);
    } finally {
      await own.uninstall();
    }
  });

  it('without a context manager, the custom-runtime middleware parents its destination spans too', async () => {
    await sdk.uninstall();
    const own = createSdk({ global: false });
    const delivered: DestinationRecord[] = [];
    const runtime = createFcRuntime({
      env: FC_ENV,
      logger: memoryLogger(),
      tracing: { tracerProvider: own.provider },
      async: { maxAsyncRetryAttempts: 1 },
      destinations: { onSuccess: (r) => void delivered.push(r) },
    });
    const server = createServer(async (req, res) => {
      const answer = await runtime.handle(req, { app: server, listener: () => ok }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => ok(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': '1', 'x-fc-request-id': 'rt-1' };
      const r = await fetch(`http://127.0.0.1:${port}/jobs`, { method: 'POST', headers });
      expect(r.status).toBe(200);
      expect(delivered).toHaveLength(1);
      const serverSpan = own.spans().find((span) => span.kind === SpanKind.SERVER);
      expect(parentOf(only(own.spans(), 'deliver onSuccess'))).toBe(idOf(serverSpan));
    } finally {
      server.close();
      await runtime.close();
      await own.uninstall();
    }
  });

  it('spans end, then forceFlush() runs before the handler returns', async () => {
    const exporter = new InMemorySpanExporter();
    const probe = flushProbe(exporter);
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter), probe as unknown as SpanProcessor],
    });
    const { handler } = setup(ok, { tracerProvider: provider });
    let settled = false;
    const pending = handler(event(), fcContext).then((r) => {
      settled = true;
      return r;
    });
    await probe.flushed;
    await tick(1); // a handler that did not wait for the flush would have returned by now
    expect(probe.calls).toBe(1);
    expect(probe.spansAtFlush).toBe(1);
    expect(settled).toBe(false);
    probe.release();
    expect((await pending).statusCode).toBe(200);
  });

  it('a flush that hangs is given up after flushTimeoutMs, with a warning', async () => {
    const exporter = new InMemorySpanExporter();
    const probe = flushProbe(exporter);
    const provider = new BasicTracerProvider({ spanProcessors: [probe as unknown as SpanProcessor] });
    const { handler, logger } = setup(ok, { tracerProvider: provider, flushTimeoutMs: 5 });
    expect((await handler(event(), fcContext)).statusCode).toBe(200);
    expect(logger.entries.find((e) => e.message === 'span flush timed out')?.fields).toEqual({ timeoutMs: 5 });
  });

  it("a flush the SDK rejects (an exporter's 401) is logged with each processor's error, not as [{}]", async () => {
    // The SDK's provider rejects its forceFlush with the array of its processors' errors.
    const sdkProvider = new BasicTracerProvider({ spanProcessors: [] });
    const provider = {
      getTracer: sdkProvider.getTracer.bind(sdkProvider),
      forceFlush: () => Promise.reject([new Error('401 bad API key')]),
    };
    const { handler, logger } = setup(ok, { tracerProvider: provider });
    expect((await handler(event(), fcContext)).statusCode).toBe(200);
    const warning = logger.entries.find((e) => e.message === 'span flush failed');
    expect(warning?.fields).toEqual({ reason: 'Error: 401 bad API key' });
  });

  it('also flushes the global SDK (behind the API proxy)', async () => {
    const original = sdk.provider.forceFlush.bind(sdk.provider);
    let flushes = 0;
    sdk.provider.forceFlush = () => {
      flushes++;
      return original();
    };
    const { handler } = setup(ok);
    await handler(event(), fcContext);
    expect(flushes).toBe(1);
  });
});
