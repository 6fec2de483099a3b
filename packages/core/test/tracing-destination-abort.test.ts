// A destination call cut short (attempt timeout, close(), platform mode's bound) may never settle:
// its `deliver` span must still end, once, with why it was cut.
import type { Span, Tracer, TracerProvider } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTracing, type DestinationRecord, deliverRecord, type TaskRecord } from '../src/index.js';
import { deferred, memoryLogger } from './helpers.js';
import { createSdk, only, type Sdk } from './tracing-setup.js';

const task = {
  taskId: 't1',
  requestId: '1-64f6d6e7-000000000000000000000001',
  status: 'Succeeded',
  functionArn: 'acs:fc:cn-hangzhou:123:functions/demo',
  qualifier: 'LATEST',
  startedTime: 0,
  alreadyRetriedTimes: 0,
  events: [],
  payload: { method: 'POST', url: '/', headers: {}, body: '', isBase64Encoded: false },
  acceptedAt: 0,
  attempts: 1,
} as unknown as TaskRecord;

const record: DestinationRecord = {
  timestamp: 1,
  requestContext: { requestId: 'r', functionArn: task.functionArn, condition: '', approximateInvokeCount: 1 },
  requestPayload: '{}',
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: 'ok',
};

/** The SDK's provider, whose spans also log every call made on them once ended. */
function watchedProvider(sdk: Sdk) {
  const afterEnd: string[] = [];
  let ends = 0;
  const provider: TracerProvider = {
    getTracer(...args: Parameters<TracerProvider['getTracer']>): Tracer {
      const tracer = sdk.provider.getTracer(...args);
      return Object.assign(Object.create(tracer) as Tracer, {
        startSpan(...start: Parameters<Tracer['startSpan']>): Span {
          const span = tracer.startSpan(...start);
          let ended = false;
          for (const method of ['end', 'setStatus', 'setAttribute', 'recordException'] as const) {
            const call = (span[method] as (...a: unknown[]) => unknown).bind(span);
            (span as unknown as Record<string, unknown>)[method] = (...a: unknown[]) => {
              if (ended) afterEnd.push(method);
              if (method === 'end') {
                ended = true;
                ends += 1;
              }
              return call(...a);
            };
          }
          return span;
        },
      });
    },
  };
  return { provider, afterEnd, ends: () => ends };
}

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  vi.useRealTimers();
  await sdk.uninstall();
});

describe('the span of a destination call that does not settle', () => {
  it('ends (ERROR, DestinationAborted) when the delivery is aborted, and a late settle changes nothing', async () => {
    const watched = watchedProvider(sdk);
    const tracing = createTracing({ tracerProvider: watched.provider }, { logger: memoryLogger() });
    const called = deferred();
    const late = deferred();
    const hung = Object.assign(
      () => {
        called.resolve();
        return late.promise;
      },
      { label: 'hung', maxRetries: 0 },
    );
    const wrapped = tracing.engineHooks.destination?.(task, 'onSuccess', '', hung, undefined);
    const controller = new AbortController();
    const delivering = deliverRecord([wrapped], record, { logger: memoryLogger(), signal: controller.signal });
    await called.promise;
    controller.abort(new Error('shutting down'));
    const result = await delivering;
    expect(result.destinations[0]?.error).toMatch(/^DestinationAborted/);
    const span = only(sdk.spans(), 'deliver onSuccess');
    expect(span.status.code).toBe(2); // ERROR
    expect(span.attributes['error.type']).toBe('DestinationAborted');
    // The call settles after all (here with an error of its own): the span was ended, once.
    late.reject(new Error('late'));
    await new Promise((r) => setImmediate(r));
    expect(watched.ends()).toBe(1);
    expect(watched.afterEnd).toEqual([]);
  });

  it('ends (ERROR, DestinationTimeout) when the attempt times out', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const tracing = createTracing({}, { logger: memoryLogger() });
    const hung = Object.assign(() => new Promise(() => {}), { label: 'hung', maxRetries: 0 });
    const wrapped = tracing.engineHooks.destination?.(task, 'onSuccess', '', hung, undefined);
    const delivering = deliverRecord([wrapped], record, { logger: memoryLogger(), attemptTimeoutMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    const result = await delivering;
    expect(result.destinations[0]?.error).toMatch(/^DestinationTimeout/);
    const span = only(sdk.spans(), 'deliver onSuccess');
    expect(span.status.code).toBe(2);
    expect(span.attributes['error.type']).toBe('DestinationTimeout');
  });

  it('a call that settles ends its span once, as before', async () => {
    const watched = watchedProvider(sdk);
    const tracing = createTracing({ tracerProvider: watched.provider }, { logger: memoryLogger() });
    const fine = Object.assign(async () => {}, { label: 'fine', maxRetries: 0 });
    const wrapped = tracing.engineHooks.destination?.(task, 'onSuccess', '', fine, undefined);
    expect((await deliverRecord([wrapped], record, { logger: memoryLogger() })).status).toBe('Succeeded');
    expect(only(sdk.spans(), 'deliver onSuccess').status.code).toBe(0);
    expect(watched.ends()).toBe(1);
    expect(watched.afterEnd).toEqual([]);
  });
});
