import type { IncomingMessage, ServerResponse } from 'node:http';
import { propagation, type TextMapPropagator } from '@opentelemetry/api';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFcHandler, type DestinationRecord } from '../src/index.js';
import { asyncEvent, context, event, memoryLogger } from './helpers.js';
import { createSdk, type Sdk, TRACEPARENT } from './tracing-setup.js';

const ok = (_req: IncomingMessage, res: ServerResponse) => {
  res.end('ok');
};

/** A span processor that throws in `onStart` or `onEnd`, as a buggy exporter pipeline would. */
function throwingProvider(where: 'onStart' | 'onEnd') {
  const processor: SpanProcessor = {
    onStart: () => {},
    onEnd: () => {},
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  processor[where] = () => {
    throw new Error(`${where} bug`);
  };
  return new BasicTracerProvider({ spanProcessors: [processor] });
}

const warnings = (logger: ReturnType<typeof memoryLogger>) =>
  logger.entries.filter((e) => e.level === 'warn').map((e) => e.message);

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

describe('an OpenTelemetry SDK that throws never breaks a request', () => {
  it.each(['onStart', 'onEnd'] as const)('a span processor throwing in %s: answered, logged once', async (where) => {
    const logger = memoryLogger();
    const handler = createFcHandler(ok, {
      logger,
      env: {},
      async: { mode: 'local' },
      tracing: { tracerProvider: throwingProvider(where) },
    });
    for (let i = 0; i < 2; i++) {
      const result = await handler(event({ headers: { traceparent: TRACEPARENT } }), context);
      expect(result.statusCode).toBe(200);
      expect(Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8').toString()).toBe('ok');
    }
    expect(warnings(logger)).toEqual([expect.stringMatching(/OpenTelemetry SDK threw/)]);
  });

  it('a span processor throwing in onEnd: an accepted task succeeds once and its destination gets one record', async () => {
    const logger = memoryLogger();
    const delivered: DestinationRecord[] = [];
    let runs = 0;
    const handler = createFcHandler(
      (req: IncomingMessage, res: ServerResponse) => {
        runs++;
        ok(req, res);
      },
      {
        logger,
        env: {},
        async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 } },
        destinations: { onSuccess: (r) => void delivered.push(r) },
        tracing: { tracerProvider: throwingProvider('onEnd') },
      },
    );
    const result = await handler(asyncEvent({ method: 'POST', path: '/jobs', taskId: 'job_onend' }), context);
    expect(result.statusCode).toBe(202);
    await handler.drain();
    const task = await handler.tasks.get('job_onend');
    expect(task).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
    expect(runs).toBe(1);
    expect(delivered).toHaveLength(1);
  });

  it('a global propagator whose extract throws: answered, logged once', async () => {
    const logger = memoryLogger();
    propagation.disable();
    const broken: TextMapPropagator = {
      inject: () => {},
      extract: () => {
        throw new Error('propagator bug');
      },
      fields: () => ['traceparent'],
    };
    propagation.setGlobalPropagator(broken);
    const handler = createFcHandler(ok, { logger, env: {}, async: { mode: 'local' } });
    for (let i = 0; i < 2; i++) {
      expect((await handler(event({ headers: { traceparent: TRACEPARENT } }), context)).statusCode).toBe(200);
    }
    expect(sdk.spans()).toHaveLength(2);
    expect(warnings(logger)).toEqual([expect.stringMatching(/OpenTelemetry SDK threw in context extraction/)]);
  });
});
