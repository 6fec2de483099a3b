import { join } from 'node:path';
import { createFcHandler, type FcHandler, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { installSdk } from '@fc-async/test-kit/tracing-sdk';
import { SpanKind, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../src/index.js';
import { tempDir, until } from './helpers.js';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const sdk = installSdk();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function handlerOn(path: string, ran: (string | undefined)[]): FcHandler {
  const handler = createFcHandler(
    (_req, res) => {
      ran.push(trace.getActiveSpan()?.spanContext().traceId);
      res.end('ok');
    },
    { logger: silentLogger, env: {}, async: { mode: 'local', backend: sqlite(path) } },
  );
  cleanups.push(() => handler.close({ timeoutMs: 100 }));
  return handler;
}

describe('sqlite(): trace context across a restart', () => {
  it('the attempt after a restart is in the accepting trace, a child of its PRODUCER span and linked to it', async () => {
    trace.setGlobalTracerProvider(sdk.provider);
    const { dir, cleanup } = tempDir();
    cleanups.push(async () => {
      await sdk.uninstall();
      trace.disable();
      cleanup();
    });
    const path = join(dir, 'tasks.db');
    const before: (string | undefined)[] = [];
    const first = handlerOn(path, before);
    const traceparent = `00-${CALLER_TRACE}-00f067aa0ba902b7-01`;
    const accepted = await first(asyncEvent('after_restart', {}, { 'X-Fc-Async-Delay': '1', traceparent }));
    expect(accepted.statusCode).toBe(202);
    await first.close({ timeoutMs: 10 });

    const after: (string | undefined)[] = [];
    const second = handlerOn(path, after);
    await until('the attempt in the next process', () => after.length === 1);
    await second.drain();
    expect(before).toEqual([]);
    expect(after).toEqual([CALLER_TRACE]);
    expect(accepted.headers.traceparent?.split('-')[1]).toBe(CALLER_TRACE);
    expect((await second.tasks.get('after_restart'))?.traceId).toBe(CALLER_TRACE);
    const spans = sdk.exporter.getFinishedSpans();
    const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
    const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
    expect(consumer?.spanContext().traceId).toBe(CALLER_TRACE);
    expect(consumer?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
    expect(consumer?.links.map((l) => l.context.spanId)).toEqual([producer?.spanContext().spanId]);
  });
});
