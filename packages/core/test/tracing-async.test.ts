import type { IncomingMessage, ServerResponse } from 'node:http';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type AsyncBackend,
  type AsyncOptions,
  createFcHandler,
  type Destination,
  type DestinationRecord,
  type FcHandlerOptions,
  getInvocation,
  MemoryTaskStore,
  PQueueDriver,
  type TaskRecord,
  type TracingOptions,
} from '../src/index.js';
import { asyncEvent, context, deferred, memoryLogger, TRANSCODE_CLOUD } from './helpers.js';
import {
  createSdk,
  idOf,
  linkedTo,
  only,
  PARENT_SPAN_ID,
  parentOf,
  requestIdOf,
  type Sdk,
  TRACE_ID,
  TRACEPARENT,
} from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

const ok: Listener = (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
};

function setup(
  app: Listener,
  async: AsyncOptions = {},
  extra: Partial<FcHandlerOptions> & { tracing?: TracingOptions; onFailure?: Destination } = {},
) {
  const delivered: DestinationRecord[] = [];
  const record: Destination = (r) => {
    delivered.push(r);
  };
  const { onFailure, ...options } = extra;
  const handler = createFcHandler(app, {
    logger: memoryLogger(),
    env: {},
    async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 }, ...async },
    destinations: { onSuccess: record, onFailure: onFailure ?? record },
    ...options,
  });
  return { handler, delivered };
}

const fcContext = { ...context, function: { name: 'transcode' } };

const byKind = (spans: ReadableSpan[], kind: SpanKind) => spans.filter((s) => s.kind === kind);

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  vi.useRealTimers();
  await sdk.uninstall();
});

describe('local async: one trace from the 202 to the destination', () => {
  it('SERVER (202) → PRODUCER send → CONSUMER process → app span, and a span per destination call', async () => {
    let active: string | undefined;
    const { handler } = setup(async (req, res) => {
      active = trace.getActiveSpan()?.spanContext().spanId;
      trace.getTracer('app').startSpan('transcode.ffmpeg').end();
      ok(req, res);
    });
    const e = asyncEvent({ method: 'POST', path: '/jobs', taskId: 'job_1', headers: { traceparent: TRACEPARENT } });
    const result = await handler(e, fcContext);
    expect(result.statusCode).toBe(202);
    await handler.drain();
    const spans = sdk.spans();
    const server = only(spans, 'POST');
    const producer = only(spans, 'send transcode');
    const consumer = only(spans, 'process transcode');
    const app = only(spans, 'transcode.ffmpeg');
    const delivery = only(spans, 'deliver onSuccess');

    expect(result.headers.traceparent).toBe(`00-${TRACE_ID}-${idOf(server)}-01`);
    expect((await handler.tasks.get('job_1'))?.traceId).toBe(TRACE_ID);
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([TRACE_ID]));
    for (const span of spans.filter((s) => s !== app)) {
      expect(span.attributes['faas.invocation_id']).toBe(requestIdOf(e));
      expect(span.attributes).toMatchObject(TRANSCODE_CLOUD);
    }

    expect(parentOf(server)).toBe(PARENT_SPAN_ID);
    expect(server.attributes).toMatchObject({
      'http.response.status_code': 202,
      'fc_async.invocation_type': 'Async',
      'fc_async.task_id': 'job_1',
      'fc_async.attempt': 0,
    });
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(producer)).toBe(idOf(server));
    expect(producer.attributes).toMatchObject({
      'messaging.system': 'fc_async',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'transcode',
      'messaging.message.id': 'job_1',
      'fc_async.task_id': 'job_1',
    });
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(consumer)).toBe(idOf(producer));
    expect(linkedTo(consumer).map((c) => c.spanId)).toEqual([idOf(producer)]);
    expect(consumer.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.message.id': 'job_1',
      'fc_async.attempt': 0,
      'fc_async.condition': '',
      'http.request.method': 'POST',
      'url.path': '/jobs',
      'http.response.status_code': 200,
    });
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
    expect(active).toBe(idOf(consumer));
    expect(parentOf(app)).toBe(idOf(consumer));
    expect(parentOf(delivery)).toBe(idOf(producer));
    expect(delivery.attributes).toMatchObject({
      'fc_async.destination': 'onSuccess',
      'fc_async.destination.label': 'function:record',
      'fc_async.destination.attempt': 1,
      'fc_async.condition': '',
    });
  });

  it('retry then success: the failed attempt is ERROR with error.type, the last one carries the condition', async () => {
    let calls = 0;
    const { handler } = setup((req, res) => {
      calls++;
      if (calls === 1) {
        res.statusCode = 500;
        res.end();
        return;
      }
      ok(req, res);
    });
    await handler(asyncEvent({ taskId: 'retry_1' }), fcContext);
    await handler.drain();
    const consumers = byKind(sdk.spans(), SpanKind.CONSUMER);
    expect(consumers.map((s) => s.attributes['fc_async.attempt'])).toEqual([0, 1]);
    const [first, second] = consumers;
    expect(first?.status.code).toBe(SpanStatusCode.ERROR);
    expect(first?.attributes).toMatchObject({ 'error.type': 'HTTP500', 'http.response.status_code': 500 });
    expect(first?.attributes).not.toHaveProperty('fc_async.condition');
    expect(second?.status.code).toBe(SpanStatusCode.UNSET);
    expect(second?.attributes['fc_async.condition']).toBe('');
    const producer = only(sdk.spans(), 'send transcode');
    expect(consumers.map(parentOf)).toEqual([idOf(producer), idOf(producer)]);
  });

  it('final failure: every attempt ERROR, the last with fc_async.condition, and each destination call a span', async () => {
    let destinationCalls = 0;
    const flaky: Destination = Object.assign(
      () => {
        destinationCalls++;
        if (destinationCalls === 1) throw new Error('webhook down');
      },
      { label: 'http:https://hooks.example.com/fc', maxRetries: 2 },
    );
    const { handler, delivered } = setup(
      () => {
        throw new TypeError('bad input');
      },
      { maxAsyncRetryAttempts: 1 },
      { onFailure: flaky },
    );
    await handler(asyncEvent({ taskId: 'fail_1' }), fcContext);
    await handler.drain();
    expect(delivered).toEqual([]);
    const spans = sdk.spans();
    const consumers = byKind(spans, SpanKind.CONSUMER);
    expect(consumers.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
    expect(consumers.map((s) => s.attributes['error.type'])).toEqual(['TypeError', 'TypeError']);
    expect(consumers.map((s) => s.attributes['fc_async.condition'])).toEqual([undefined, 'UnhandledInvocationError']);
    expect(consumers[0]?.events[0]?.attributes).toMatchObject({ 'exception.message': 'bad input' });
    const deliveries = spans.filter((s) => s.name === 'deliver onFailure');
    expect(deliveries.map((s) => [s.attributes['fc_async.destination.attempt'], s.status.code])).toEqual([
      [1, SpanStatusCode.ERROR],
      [2, SpanStatusCode.UNSET],
    ]);
    expect(deliveries[0]?.attributes).toMatchObject({
      'fc_async.destination.label': 'http:https://hooks.example.com/fc',
      'fc_async.condition': 'UnhandledInvocationError',
      'error.type': 'Error',
    });
  });

  it('expired: a CONSUMER span with fc_async.condition EventAgeExceeded, ERROR, and no attempt ran', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let calls = 0;
    const { handler } = setup(
      (req, res) => {
        calls++;
        ok(req, res);
      },
      { maxAsyncEventAgeInSeconds: 2 },
    );
    await handler(asyncEvent({ taskId: 'late', delay: '3' }), fcContext);
    await vi.advanceTimersByTimeAsync(4_000);
    await handler.drain();
    expect(calls).toBe(0);
    const spans = sdk.spans();
    const consumer = only(spans, 'process transcode');
    expect(consumer.attributes).toMatchObject({
      'fc_async.condition': 'EventAgeExceeded',
      'error.type': 'EventAgeExceeded',
      ...TRANSCODE_CLOUD,
    });
    expect(consumer.attributes).not.toHaveProperty('fc_async.attempt');
    expect(consumer.status.code).toBe(SpanStatusCode.ERROR);
    expect(parentOf(consumer)).toBe(idOf(only(spans, 'send transcode')));
    expect(only(spans, 'deliver onFailure').attributes['fc_async.condition']).toBe('EventAgeExceeded');
  });

  it('stopped while waiting: a CONSUMER span with fc_async.condition Stopped; stopped while running: on its attempt', async () => {
    const started = deferred();
    const { handler } = setup((req, res) => {
      started.resolve();
      getInvocation(req)?.signal.addEventListener('abort', () => {
        res.statusCode = 499;
        res.end();
      });
    });
    await handler(asyncEvent({ taskId: 'queued', delay: '100' }), fcContext);
    await handler.tasks.stop('queued');
    await handler(asyncEvent({ taskId: 'running' }), fcContext);
    await started.promise;
    await handler.tasks.stop('running');
    await handler.drain();
    const consumers = byKind(sdk.spans(), SpanKind.CONSUMER);
    const of = (taskId: string) => consumers.find((s) => s.attributes['fc_async.task_id'] === taskId);
    expect(of('queued')?.attributes).toMatchObject({ 'fc_async.condition': 'Stopped' });
    expect(of('queued')?.attributes).not.toHaveProperty('fc_async.attempt');
    expect(of('running')?.attributes).toMatchObject({ 'fc_async.condition': 'Stopped', 'fc_async.attempt': 0 });
    expect(consumers.map((s) => s.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
  });

  it('newTracePerAttempt: each attempt is a new root, linked to the accept', async () => {
    const { handler } = setup(ok, {}, { tracing: { newTracePerAttempt: true } });
    await handler(asyncEvent({ taskId: 'rooted', headers: { traceparent: TRACEPARENT } }), fcContext);
    await handler.drain();
    const spans = sdk.spans();
    const producer = only(spans, 'send transcode');
    const consumer = only(spans, 'process transcode');
    expect(parentOf(consumer)).toBeUndefined();
    expect(consumer.spanContext().traceId).not.toBe(TRACE_ID);
    expect(linkedTo(consumer)).toMatchObject([{ traceId: TRACE_ID, spanId: idOf(producer) }]);
  });

  it('a refused request (409) ends its PRODUCER span in ERROR and sends no traceparent', async () => {
    const { handler } = setup(ok);
    await handler(asyncEvent({ taskId: 'twice' }), fcContext);
    const again = await handler(asyncEvent({ taskId: 'twice' }), fcContext);
    await handler.drain();
    expect(again.statusCode).toBe(409);
    expect(again.headers).not.toHaveProperty('traceparent');
    const producers = byKind(sdk.spans(), SpanKind.PRODUCER);
    expect(producers.map((s) => s.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.ERROR]);
    expect(producers[1]?.attributes['error.type']).toBe('AsyncTaskAlreadyExists');
  });

  it('the task keeps its trace context as plain strings, so a persistent store keeps it', async () => {
    const { handler } = setup(ok);
    await handler(asyncEvent({ taskId: 'stored', headers: { baggage: 'tenant=acme' } }), fcContext);
    await handler.drain();
    const engine = handler.engine as unknown as { store: { get(id: string): { traceContext?: unknown } } };
    const traceContext = (await engine.store.get('stored')).traceContext as Record<string, string>;
    const producer = only(sdk.spans(), 'send transcode');
    expect(traceContext).toEqual({
      traceparent: `00-${producer.spanContext().traceId}-${idOf(producer)}-01`,
      baggage: 'tenant=acme',
    });
    expect(JSON.parse(JSON.stringify(traceContext))).toEqual(traceContext);
  });
});

describe('local async: the cloud and FaaS attributes come from the task record', () => {
  /** A backend that keeps its tasks across starts, in `store` (as a file or a database would). */
  const kept = (store: MemoryTaskStore): AsyncBackend => ({
    name: 'kept',
    persistent: true,
    create: ({ concurrency }) => ({ store, queue: new PQueueDriver(concurrency) }),
  });

  it('a task recovered after a restart: attempt and destination spans, with no invocation in the new process', async () => {
    const before = new MemoryTaskStore();
    const first = setup(ok, { backend: kept(before) });
    const shanghai = { ...context, region: 'cn-shanghai', accountId: '456', function: { name: 'resize' } };
    await first.handler(asyncEvent({ taskId: 'kept_1', delay: '100' }), shanghai);
    await first.handler.close({ timeoutMs: 0 });
    // The record as a durable store reads it back, due now; the new process never saw an invocation.
    const stored = JSON.parse(JSON.stringify(await before.get('kept_1'))) as TaskRecord;
    stored.dueAt = undefined;
    const after = new MemoryTaskStore();
    after.insert(stored);
    sdk.exporter.reset();

    const { handler, delivered } = setup(ok, { backend: kept(after) });
    await handler.engine?.whenReady();
    await handler.drain();
    expect(delivered.map((r) => r.requestContext.requestId)).toEqual([stored.requestId]);
    const spans = sdk.spans();
    const expected = {
      'cloud.provider': 'alibaba_cloud',
      'cloud.platform': 'alibaba_cloud_fc',
      'cloud.region': 'cn-shanghai',
      'cloud.account.id': '456',
      'cloud.resource_id': 'acs:fc:cn-shanghai:456:functions/resize',
      'faas.name': 'resize',
    };
    expect(only(spans, 'process resize').attributes).toMatchObject({ ...expected, 'fc_async.attempt': 0 });
    expect(only(spans, 'deliver onSuccess').attributes).toMatchObject(expected);
    await handler.close({ timeoutMs: 100 });
  });

  it('a local run (no FC region nor account): no cloud.region, cloud.account.id nor cloud.resource_id, as on its SERVER span', async () => {
    const { handler } = setup(ok);
    await handler(asyncEvent({ method: 'POST', taskId: 'offline' }), { requestId: undefined });
    await handler.drain();
    const spans = sdk.spans();
    const server = only(spans, 'POST');
    for (const span of spans) {
      expect(span.attributes).toMatchObject({
        'cloud.provider': 'alibaba_cloud',
        'cloud.platform': 'alibaba_cloud_fc',
      });
      expect(Object.keys(span.attributes).filter((k) => /^cloud\.(region|account|resource)/.test(k))).toEqual([]);
    }
    const names = spans.filter((s) => s !== server).map((s) => [s.name, s.attributes['faas.name']]);
    expect(names).toEqual([
      ['send fc-async-local', 'fc-async-local'],
      ['process fc-async-local', 'fc-async-local'],
      ['deliver onSuccess', 'fc-async-local'],
    ]);
  });
});

describe("the emulator's stand-ins (fc-async dev's default --account-id 0)", () => {
  it('every span of the trace, SERVER included, leaves out the stand-in account and the ARN it would make', async () => {
    const { handler } = setup(ok);
    await handler(asyncEvent({ method: 'POST', taskId: 'emulated' }), { ...fcContext, accountId: '0' });
    await handler.drain();
    const spans = sdk.spans();
    expect(spans.map((s) => s.name).sort()).toEqual([
      'POST',
      'deliver onSuccess',
      'process transcode',
      'send transcode',
    ]);
    for (const span of spans) {
      expect(span.attributes).toMatchObject({ 'cloud.region': 'cn-hangzhou', 'faas.name': 'transcode' });
      expect(Object.keys(span.attributes).filter((k) => /^cloud\.(account|resource)/.test(k))).toEqual([]);
    }
  });
});

describe('local async without an SDK', () => {
  it('no trace id on the task, no traceparent on the 202, attempts run as before', async () => {
    await sdk.uninstall();
    const { handler, delivered } = setup(ok);
    const result = await handler(asyncEvent({ taskId: 'plain' }), fcContext);
    await handler.drain();
    expect(result.headers).not.toHaveProperty('traceparent');
    expect((await handler.tasks.get('plain'))?.traceId).toBeUndefined();
    expect(delivered).toHaveLength(1);
    sdk = createSdk();
  });
});
