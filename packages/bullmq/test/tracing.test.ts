import { createFcHandler, type FcHandler, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { installSdk } from '@fc-async/test-kit/tracing-sdk';
import { SpanKind, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { uniquePrefix, until } from './helpers.js';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const sdk = installSdk();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function instance(prefix: string, ran: (string | undefined)[]): FcHandler {
  const handler = createFcHandler(
    (_req, res) => {
      ran.push(trace.getActiveSpan()?.spanContext().traceId);
      res.end('ok');
    },
    {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: bullmq({ connection: inject('redisUrl'), prefix }) },
    },
  );
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return handler;
}

describe('bullmq(): trace context across instances', () => {
  it('a task accepted by one instance runs in another in the accepting trace, under its PRODUCER span', async () => {
    trace.setGlobalTracerProvider(sdk.provider);
    closers.push(async () => {
      await sdk.uninstall();
      trace.disable();
    });
    const prefix = uniquePrefix();
    const before: (string | undefined)[] = [];
    const acceptor = instance(prefix, before);
    const traceparent = `00-${CALLER_TRACE}-00f067aa0ba902b7-01`;
    const accepted = await acceptor(asyncEvent('elsewhere', {}, { 'X-Fc-Async-Delay': '1', traceparent }));
    expect(accepted.statusCode).toBe(202);
    await acceptor.close({ timeoutMs: 100 });

    const after: (string | undefined)[] = [];
    const worker = instance(prefix, after);
    await until('the attempt on the other instance', () => after.length === 1, 10_000);
    await worker.drain();
    expect(before).toEqual([]);
    expect(after).toEqual([CALLER_TRACE]);
    expect((await worker.tasks.get('elsewhere'))?.traceId).toBe(CALLER_TRACE);
    const spans = sdk.exporter.getFinishedSpans();
    const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    expect(accepted.headers.traceparent?.split('-')[1]).toBe(CALLER_TRACE);
    expect(consumer?.spanContext().traceId).toBe(CALLER_TRACE);
    expect(consumer?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
    expect(consumer?.links.map((l) => l.context.spanId)).toEqual([producer?.spanContext().spanId]);
  });
});
