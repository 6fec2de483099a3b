import { join } from 'node:path';
import { createFcHandler, type Destination, type DestinationRecord, getInvocation, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import { installSdk } from '@fc-async/test-kit/tracing-sdk';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { sqlite } from '../src/index.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir } from './helpers.js';

// The accepting process's PRODUCER span, as the trace context its tasks keep names it.
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER = '00f067aa0ba902b7';
const traceContext = { traceparent: `00-${TRACE}-${PRODUCER}-01`, tracestate: 'vendor=abc' };

const sdk = installSdk();
const cleanups: (() => unknown)[] = [];
beforeEach(() => {
  trace.setGlobalTracerProvider(sdk.provider);
  sdk.exporter.reset();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  trace.disable();
});
afterAll(() => sdk.uninstall());

/** Writes records as a process killed mid-attempt left them, then starts the next process on the file. */
async function restartAfterCrash(records: ReturnType<typeof record>[]) {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const path = join(dir, 'tasks.db');
  const options = resolveSqliteOptions(path, {});
  const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
  for (const r of records) await store.insert(r);
  store.close();
  const failures: DestinationRecord[] = [];
  const handler = createFcHandler((_req, res) => res.end('ok'), {
    logger: silentLogger,
    env: {},
    async: { mode: 'local', maxAsyncRetryAttempts: 2, backoff: { baseMs: 1, maxMs: 2 }, backend: sqlite(path) },
    destinations: { onFailure: (r) => void failures.push(r) },
  });
  cleanups.push(() => handler.close({ timeoutMs: 100 }));
  await handler.engine?.whenReady();
  await handler.drain();
  return { handler, failures };
}

const consumers = (taskId: string): ReadableSpan[] =>
  sdk.exporter
    .getFinishedSpans()
    .filter((s) => s.kind === SpanKind.CONSUMER && s.attributes['fc_async.task_id'] === taskId);

describe('sqlite(): the trace of a task whose process was killed mid-attempt', () => {
  it('a last attempt cut short: a CONSUMER span in the accepting trace tells it, ERROR Interrupted, with the condition', async () => {
    const runningAt = Date.now() - 5_000;
    const { handler, failures } = await restartAfterCrash([
      record('cut_last', {
        status: 'Running',
        attempts: 3,
        traceContext,
        events: [
          { eventId: 1, status: 'Enqueued', timestamp: runningAt - 10, eventDetail: '' },
          { eventId: 2, status: 'Running', timestamp: runningAt, eventDetail: '' },
        ],
      }),
    ]);
    expect((await handler.tasks.get('cut_last'))?.status).toBe('Failed');
    expect(failures).toHaveLength(1);
    const [span, ...more] = consumers('cut_last');
    expect(more).toEqual([]);
    expect(span?.name).toBe('process demo');
    expect(span?.spanContext().traceId).toBe(TRACE);
    expect(span?.parentSpanContext?.spanId).toBe(PRODUCER);
    expect(span?.links.map((l) => l.context.spanId)).toEqual([PRODUCER]);
    expect(span?.spanContext().traceState?.get('vendor')).toBe('abc');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({
      'fc_async.attempt': 2,
      'error.type': 'Interrupted',
      'fc_async.condition': 'InvocationError',
      'messaging.operation.type': 'process',
      'faas.trigger': 'pubsub',
    });
    expect(span?.events.map((e) => e.name)).toEqual(['exception']);
    // From the attempt's start (its Running event), not from the recovery.
    expect(span?.startTime[0]).toBe(Math.floor(runningAt / 1000));
    // Its onFailure call, in the same trace.
    const deliver = sdk.exporter.getFinishedSpans().find((s) => s.name === 'deliver onFailure');
    expect(deliver?.spanContext().traceId).toBe(TRACE);
    expect(deliver?.attributes['fc_async.condition']).toBe('InvocationError');
  });

  it('an attempt cut short with retries left: its span (no condition), then the retry’s', async () => {
    const { handler } = await restartAfterCrash([
      record('cut_first', { status: 'Running', attempts: 1, traceContext }),
    ]);
    expect((await handler.tasks.get('cut_first'))?.status).toBe('Succeeded');
    const spans = consumers('cut_first');
    expect(spans.map((s) => [s.attributes['fc_async.attempt'], s.attributes['error.type'], s.status.code])).toEqual([
      [0, 'Interrupted', SpanStatusCode.ERROR],
      [1, undefined, SpanStatusCode.UNSET],
    ]);
    expect(spans[0]?.attributes['fc_async.condition']).toBeUndefined();
    expect(spans[1]?.attributes['fc_async.condition']).toBe('');
    expect(spans.every((s) => s.parentSpanContext?.spanId === PRODUCER)).toBe(true);
  });

  it('a task stopped while its attempt ran: the next process ends it Stopped with a CONSUMER span saying so', async () => {
    const { handler, failures } = await restartAfterCrash([
      record('stop_then_crash', { status: 'Stopping', attempts: 1, traceContext }),
    ]);
    expect((await handler.tasks.get('stop_then_crash'))?.status).toBe('Stopped');
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    const [span, ...more] = consumers('stop_then_crash');
    expect(more).toEqual([]);
    expect(span?.spanContext().traceId).toBe(TRACE);
    expect(span?.parentSpanContext?.spanId).toBe(PRODUCER);
    expect(span?.attributes['fc_async.condition']).toBe('Stopped');
  });
});

/**
 * A handler's options on the task file at `path` with a new trace per attempt, and a small grace
 * for a delivery close() cuts (stopGraceMs, 10 s by default): the record is owed all the same.
 */
function perAttemptOn(path: string, destinations: { onSuccess?: Destination; onFailure?: Destination }) {
  return {
    logger: silentLogger,
    env: {},
    tracing: { newTracePerAttempt: true },
    async: { mode: 'local' as const, backend: sqlite(path), stopGraceMs: 100 },
    destinations,
  };
}

describe('sqlite(): newTracePerAttempt, a delivery owed when the process ended', () => {
  it('made again by the next process: in the trace of the attempt whose outcome it delivers, as a first one is', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    const options = (onSuccess: Destination) => perAttemptOn(path, { onSuccess });
    let called!: () => void;
    const calledOnce = new Promise<void>((resolve) => {
      called = resolve;
    });
    // Its destination answers only its abort: close() cuts the delivery short, and it is owed.
    const first = createFcHandler(
      (_req, res) => res.end('ok'),
      options(
        Object.assign(
          (_record: unknown, ctx?: { signal: AbortSignal }) => {
            called();
            return new Promise<void>((_, reject) =>
              ctx?.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
            );
          },
          { maxRetries: 0 },
        ),
      ),
    );
    const traceparent = `00-${TRACE}-${PRODUCER}-01`;
    expect((await first(asyncEvent('owed', {}, { traceparent }))).statusCode).toBe(202);
    await calledOnce;
    await first.close({ timeoutMs: 50 });

    const delivered: DestinationRecord[] = [];
    const next = createFcHandler(
      (_req, res) => res.end('ok'),
      options((r) => void delivered.push(r)),
    );
    cleanups.push(() => next.close({ timeoutMs: 100 }));
    await next.engine?.whenReady();
    await next.drain();
    expect(delivered).toHaveLength(1);

    const producer = sdk.exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER);
    expect(producer?.spanContext().traceId).toBe(TRACE);
    const [attempt, ...more] = consumers('owed');
    expect(more).toEqual([]);
    expect(attempt?.spanContext().traceId).not.toBe(TRACE);
    const deliveries = sdk.exporter.getFinishedSpans().filter((s) => s.name === 'deliver onSuccess');
    expect(deliveries).toHaveLength(2);
    // The cut one and the one made again: each the child of the attempt's span, linked to the accept.
    for (const span of deliveries) {
      expect(span.spanContext().traceId).toBe(attempt?.spanContext().traceId);
      expect(span.parentSpanContext?.spanId).toBe(attempt?.spanContext().spanId);
      expect(span.links.map((l) => l.context.spanId)).toEqual([producer?.spanContext().spanId]);
    }
  });
});

describe('sqlite(): newTracePerAttempt, the delivery of a stopped task owed when the process ended', () => {
  it('made again by the next process: in the trace of the attempt the stop ended, as the first one is', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    const options = (onFailure: Destination) => perAttemptOn(path, { onFailure });
    let running!: () => void;
    const runningOnce = new Promise<void>((resolve) => {
      running = resolve;
    });
    let called!: () => void;
    const calledOnce = new Promise<void>((resolve) => {
      called = resolve;
    });
    // The app ends its attempt on its abort (the stop); the destination answers only its own abort,
    // so close() cuts the delivery short and it is owed.
    const first = createFcHandler(
      (req, res) => {
        const signal = getInvocation(req)?.signal;
        running();
        signal?.addEventListener('abort', () => res.destroy(signal.reason as Error));
      },
      options(
        Object.assign(
          (_record: unknown, ctx?: { signal: AbortSignal }) => {
            called();
            return new Promise<void>((_, reject) =>
              ctx?.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
            );
          },
          { maxRetries: 0 },
        ),
      ),
    );
    const traceparent = `00-${TRACE}-${PRODUCER}-01`;
    const accepted = await first(asyncEvent('stopped-owed', {}, { traceparent }));
    expect(accepted.statusCode).toBe(202);
    await runningOnce;
    await first.tasks.stop('stopped-owed');
    await calledOnce;
    await first.close({ timeoutMs: 50 });

    const delivered: DestinationRecord[] = [];
    const next = createFcHandler(
      (_req, res) => res.end('ok'),
      options((r) => void delivered.push(r)),
    );
    cleanups.push(() => next.close({ timeoutMs: 100 }));
    await next.engine?.whenReady();
    await next.drain();
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['Stopped']);

    const producer = sdk.exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER);
    const [attempt, ...more] = consumers('stopped-owed');
    expect(more).toEqual([]);
    expect(attempt?.attributes['fc_async.condition']).toBe('Stopped');
    const deliveries = sdk.exporter.getFinishedSpans().filter((s) => s.name === 'deliver onFailure');
    expect(deliveries).toHaveLength(2);
    // The cut one and the one made again: each the child of the stopped attempt's span, linked to the accept.
    for (const span of deliveries) {
      expect(span.spanContext().traceId).toBe(attempt?.spanContext().traceId);
      expect(span.parentSpanContext?.spanId).toBe(attempt?.spanContext().spanId);
      expect(span.links.map((l) => l.context.spanId)).toEqual([producer?.spanContext().spanId]);
    }
  });
});
