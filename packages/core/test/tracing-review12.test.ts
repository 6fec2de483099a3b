import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createFcHandler,
  createFcRuntime,
  createTracing,
  type DestinationRecord,
  type Invocation,
  writeBridgeResponse,
} from '../src/index.js';
import { asyncEvent, context, event, memoryLogger } from './helpers.js';
import { createSdk, idOf, linkedTo, only, parentOf, type Sdk, TRACEPARENT } from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

const ok: Listener = (_req, res) => {
  res.end('ok');
};

const FC_ENV = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const fcContext = { ...context, requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', function: { name: 'transcode' } };

/** A provider whose only span processor throws in `onStart`, as a buggy exporter pipeline would. */
function onStartThrows() {
  const processor: SpanProcessor = {
    onStart: () => {
      throw new Error('onStart bug');
    },
    onEnd: () => {},
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  return new BasicTracerProvider({ spanProcessors: [processor] });
}

const warnings = (logger: ReturnType<typeof memoryLogger>) =>
  logger.entries.filter((e) => e.level === 'warn' || e.level === 'error').map((e) => e.message);

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

describe('a span processor whose onStart throws never breaks a destination call', () => {
  it('local mode: every task is delivered; each site is logged once', async () => {
    const logger = memoryLogger();
    const delivered: DestinationRecord[] = [];
    const handler = createFcHandler(ok, {
      logger,
      env: {},
      async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 } },
      destinations: { onSuccess: (r) => void delivered.push(r) },
      tracing: { tracerProvider: onStartThrows() },
    });
    for (const taskId of ['job_a', 'job_b']) {
      expect((await handler(asyncEvent({ method: 'POST', taskId }), context)).statusCode).toBe(202);
    }
    await handler.drain();
    for (const taskId of ['job_a', 'job_b']) {
      expect(await handler.tasks.get(taskId)).toMatchObject({ status: 'Succeeded', destinationStatus: 'Succeeded' });
    }
    expect(delivered.map((r) => r.requestContext.requestId)).toHaveLength(2);
    const logged = warnings(logger);
    expect(logged).not.toContain('destination delivery failed, giving up');
    // span start (SERVER), accept, attempt, destination: once each, whatever the number of tasks.
    expect(logged).toHaveLength(4);
    expect(new Set(logged).size).toBe(4);
    for (const site of ['span start', 'accept span start', 'attempt span start', 'destination span start']) {
      expect(logged).toContain(`tracing: the OpenTelemetry SDK threw in ${site}; the request goes on (logged once)`);
    }
  });

  it('platform mode: the destination gets its record', async () => {
    const logger = memoryLogger();
    const delivered: DestinationRecord[] = [];
    const handler = createFcHandler(ok, {
      logger,
      env: FC_ENV,
      destinations: { onSuccess: (r) => void delivered.push(r) },
      tracing: { tracerProvider: onStartThrows() },
    });
    for (let i = 0; i < 2; i++) {
      const result = await handler(event({ method: 'POST', headers: { 'X-Fc-Invocation-Type': 'Async' } }), fcContext);
      expect(result.statusCode).toBe(200);
    }
    expect(delivered).toHaveLength(2);
    expect(warnings(logger)).toEqual([
      expect.stringMatching(/SDK threw in span start/),
      expect.stringMatching(/SDK threw in destination span start/),
    ]);
  });
});

describe('platform mode: the SERVER span of an async invocation carries its task id', () => {
  it('the request id when the caller sent no task id, as the destination span has it', async () => {
    const handler = createFcHandler(ok, { env: FC_ENV, destinations: { onSuccess: () => {} } });
    const e = event({ method: 'POST', headers: { 'X-Fc-Invocation-Type': 'Async' } });
    expect((await handler(e, fcContext)).statusCode).toBe(200);
    const server = only(sdk.spans(), 'POST');
    expect(server.attributes['fc_async.task_id']).toBe(fcContext.requestId);
    expect(only(sdk.spans(), 'deliver onSuccess').attributes['fc_async.task_id']).toBe(fcContext.requestId);
  });

  it('without destinations too; a sync invocation has none', async () => {
    const handler = createFcHandler(ok, { env: FC_ENV });
    await handler(event({ method: 'POST', headers: { 'X-Fc-Invocation-Type': 'Async' } }), fcContext);
    await handler(event({ method: 'GET' }), fcContext);
    expect(only(sdk.spans(), 'POST').attributes['fc_async.task_id']).toBe(fcContext.requestId);
    expect(only(sdk.spans(), 'GET').attributes).not.toHaveProperty('fc_async.task_id');
  });
});

describe('local mode: a SERVER span names its function when FC names none', () => {
  const invocation = { type: 'Sync', requestId: 'r1', attempt: 0, functionName: '', qualifier: 'LATEST' };

  it('createTracing: the functionName given, as the task ARN has it', () => {
    const tracing = createTracing({}, { logger: memoryLogger(), functionName: 'orders' });
    const span = tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} });
    span?.setInvocation(invocation as Invocation);
    span?.end({ statusCode: 200 });
    expect(only(sdk.spans(), 'GET').attributes['faas.name']).toBe('orders');
  });

  it('createFcHandler in local mode: async.functionName on the SERVER span', async () => {
    const handler = createFcHandler(ok, { env: {}, logger: memoryLogger(), async: { functionName: 'orders' } });
    await handler(event({ method: 'GET' }), { requestId: 'r2' });
    expect(only(sdk.spans(), 'GET').attributes['faas.name']).toBe('orders');
  });

  it("createTracing: FC's name wins", () => {
    const tracing = createTracing({}, { logger: memoryLogger(), functionName: 'orders' });
    const span = tracing.startInvocationSpan({ method: 'GET', url: '/', headers: {} });
    span?.setInvocation({ ...invocation, functionName: 'transcode' } as Invocation);
    span?.end({ statusCode: 200 });
    expect(only(sdk.spans(), 'GET').attributes['faas.name']).toBe('transcode');
  });

  it('the custom-runtime middleware: async.functionName on the SERVER span as on the task spans', async () => {
    const runtime = createFcRuntime({
      env: {},
      logger: memoryLogger(),
      async: { mode: 'local', functionName: 'orders' },
      destinations: { onSuccess: () => {} },
    });
    const server = createServer(async (req, res) => {
      const answer = await runtime.handle(req, { app: server, listener: () => ok }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => ok(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      const r = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async' },
      });
      expect(r.status).toBe(202);
      await runtime.drain();
      const names = sdk.spans().map((s) => [s.kind, s.attributes['faas.name']]);
      expect(names.filter(([kind]) => kind === SpanKind.SERVER)).toEqual([
        [SpanKind.SERVER, 'orders'],
        [SpanKind.SERVER, 'orders'],
      ]);
      expect(names.every(([, name]) => name === 'orders')).toBe(true);
    } finally {
      server.close();
      await runtime.close();
    }
  });
});

describe("a runtime's function error answer is recorded like a throw", () => {
  /** What a built-in runtime (the emulator's) answers for a handler that threw. */
  const threw: Listener = (_req, res) => {
    res.writeHead(502, { 'content-type': 'application/json', 'x-fc-error-type': 'UnhandledInvocationError' });
    res.end(JSON.stringify({ errorMessage: 'handler threw', errorType: 'TypeError' }));
  };

  it('the SERVER span has the thrown error type and the exception, as the attempt span does', async () => {
    const handler = createFcHandler(threw, {
      env: {},
      logger: memoryLogger(),
      async: { mode: 'local', maxAsyncRetryAttempts: 0 },
    });
    expect((await handler(event(), context)).statusCode).toBe(502);
    await handler(asyncEvent({ method: 'POST' }), context);
    await handler.drain();
    const server = only(sdk.spans(), 'GET');
    const consumer = sdk.spans().find((s) => s.kind === SpanKind.CONSUMER);
    for (const span of [server, consumer]) {
      expect(span?.status.code).toBe(SpanStatusCode.ERROR);
      expect(span?.attributes['error.type']).toBe('TypeError');
      expect(span?.events.map((e) => [e.name, e.attributes?.['exception.message']])).toEqual([
        ['exception', 'handler threw'],
      ]);
    }
  });

  it('a long errorType and errorMessage are cut at 4,096 characters on both spans', async () => {
    const handler = createFcHandler(
      (_req, res) => {
        res.writeHead(502, { 'content-type': 'application/json', 'x-fc-error-type': 'UnhandledInvocationError' });
        res.end(JSON.stringify({ errorMessage: 'm'.repeat(20_000), errorType: 'T'.repeat(20_000) }));
      },
      { env: {}, logger: memoryLogger(), async: { mode: 'local', maxAsyncRetryAttempts: 0 } },
    );
    expect((await handler(event(), context)).statusCode).toBe(502);
    await handler(asyncEvent({ method: 'POST' }), context);
    await handler.drain();
    const server = only(sdk.spans(), 'GET');
    const consumer = sdk.spans().find((s) => s.kind === SpanKind.CONSUMER);
    for (const span of [server, consumer]) {
      expect(span?.attributes['error.type']).toBe(`${'T'.repeat(4096)}…`);
      expect(span?.events.map((e) => e.attributes?.['exception.message'])).toEqual([`${'m'.repeat(4096)}…`]);
    }
  });

  it("a thrown error's long name is cut at 4,096 characters: spans, the task's record, the onFailure record", async () => {
    const failures: DestinationRecord[] = [];
    const handler = createFcHandler(
      () => {
        throw Object.assign(new Error('m'.repeat(20_000)), { name: 'N'.repeat(20_000) });
      },
      {
        env: {},
        logger: memoryLogger(),
        async: { mode: 'local', maxAsyncRetryAttempts: 0 },
        destinations: { onFailure: (r) => void failures.push(r) },
      },
    );
    await handler(event(), context);
    await handler(asyncEvent({ method: 'POST', taskId: 'long_name' }), context);
    await handler.drain();
    const cut = `${'N'.repeat(4096)}…`;
    const server = only(sdk.spans(), 'GET');
    const consumer = sdk.spans().find((s) => s.kind === SpanKind.CONSUMER);
    for (const span of [server, consumer]) {
      expect(span?.attributes['error.type']).toBe(cut);
      expect(span?.events.map((e) => e.attributes?.['exception.type'])).toEqual([cut]);
      expect(span?.events.map((e) => e.attributes?.['exception.message'])).toEqual([`${'m'.repeat(4096)}…`]);
    }
    expect((await handler.tasks.get('long_name'))?.taskErrorMessage).toBe(`${'m'.repeat(4096)}…`);
    expect(failures.map((r) => JSON.parse(r.responsePayload ?? '{}').errorType)).toEqual([cut]);
  });

  /** An exception message as `[its length, its first character, whether an ellipsis ends it]`: short when it fails. */
  const shape = (text: unknown) => [String(text).length, String(text)[0], String(text).endsWith('…')];

  it("a thrown error's long message under a short name is cut at 4,096 characters: SERVER, CONSUMER and destination spans", async () => {
    const handler = createFcHandler(
      () => {
        throw new TypeError('m'.repeat(20_000));
      },
      {
        env: {},
        logger: memoryLogger(),
        async: { mode: 'local', maxAsyncRetryAttempts: 0 },
        destinations: {
          onFailure: () => {
            throw new RangeError('d'.repeat(20_000));
          },
        },
      },
    );
    await handler(event(), context);
    await handler(asyncEvent({ method: 'POST', taskId: 'long_message' }), context);
    await handler.drain();
    const server = only(sdk.spans(), 'GET');
    const consumer = sdk.spans().find((s) => s.kind === SpanKind.CONSUMER);
    const deliveries = sdk.spans().filter((s) => s.name === 'deliver onFailure');
    expect(deliveries.length).toBeGreaterThan(0);
    for (const span of [server, consumer]) {
      expect(span?.attributes['error.type']).toBe('TypeError');
      expect(span?.events.map((e) => shape(e.attributes?.['exception.message']))).toEqual([[4097, 'm', true]]);
    }
    for (const span of deliveries) {
      expect(span.events.map((e) => shape(e.attributes?.['exception.message']))).toEqual([[4097, 'd', true]]);
    }
    // The stack trace's first line repeats the message: cut there too, its frames kept.
    for (const span of [server, ...deliveries]) {
      const stack = String(span.events[0]?.attributes?.['exception.stacktrace']);
      expect(stack.length).toBeLessThan(4096 + 4000);
      expect(stack).toMatch(/…\n\s+at /);
    }
  });

  it("a long message cut keeps the error's code as the exception event's type, as a short one does", async () => {
    // A driver's error (mysql2's ER_PARSE_ERROR quotes the statement): the SDK types the exception by its code.
    const handler = createFcHandler(
      (req) => {
        const length = req.url === '/long' ? 20_000 : 10;
        throw Object.assign(new Error('q'.repeat(length)), { code: 'ER_PARSE_ERROR' });
      },
      { env: {}, logger: memoryLogger() },
    );
    await handler(event({ path: '/short' }), context);
    await handler(event({ path: '/long' }), context);
    const types = sdk.spans().map((s) => s.events.map((e) => e.attributes?.['exception.type']));
    expect(types).toEqual([['ER_PARSE_ERROR'], ['ER_PARSE_ERROR']]);
  });

  it('a long thrown string is cut at 4,096 characters on the SERVER span', async () => {
    const handler = createFcHandler(
      () => {
        throw 's'.repeat(20_000);
      },
      { env: {}, logger: memoryLogger() },
    );
    await handler(event(), context);
    const server = only(sdk.spans(), 'GET');
    expect(server.events.map((e) => shape(e.attributes?.['exception.message']))).toEqual([[4097, 's', true]]);
  });

  it('an app that answers a 502 itself is not taken for a throw', async () => {
    const handler = createFcHandler(
      (_req, res) => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errorMessage: 'upstream down', errorType: 'TypeError' }));
      },
      { env: {}, logger: memoryLogger(), async: { mode: 'local' } },
    );
    await handler(event(), context);
    const server = only(sdk.spans(), 'GET');
    expect(server.attributes['error.type']).toBe('502');
    expect(server.events).toEqual([]);
  });
});

describe('newTracePerAttempt: a destination call is the child of the attempt whose outcome it delivers', () => {
  it('in that attempt’s trace, linked to the accept', async () => {
    let runs = 0;
    const delivered: DestinationRecord[] = [];
    const handler = createFcHandler(
      (_req, res) => {
        runs++;
        res.statusCode = runs === 1 ? 500 : 200;
        res.end();
      },
      {
        env: {},
        logger: memoryLogger(),
        async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 } },
        destinations: { onSuccess: [(r) => void delivered.push(r), (r) => void delivered.push(r)] },
        tracing: { newTracePerAttempt: true },
      },
    );
    await handler(asyncEvent({ method: 'POST', headers: { traceparent: TRACEPARENT } }), context);
    await handler.drain();
    expect(delivered).toHaveLength(2);
    const spans = sdk.spans();
    const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
    const attempts = spans.filter((s) => s.kind === SpanKind.CONSUMER);
    expect(attempts.map((s) => s.attributes['fc_async.attempt'])).toEqual([0, 1]);
    const final = attempts[1];
    const deliveries = spans.filter((s) => s.name === 'deliver onSuccess');
    expect(deliveries).toHaveLength(2);
    for (const delivery of deliveries) {
      expect(parentOf(delivery)).toBe(idOf(final));
      expect(delivery.spanContext().traceId).toBe(final?.spanContext().traceId);
      expect(linkedTo(delivery)).toMatchObject([{ spanId: idOf(producer) }]);
    }
  });

  it('a task stopped before it ran: its onFailure call is the child of its span', async () => {
    const delivered: DestinationRecord[] = [];
    const handler = createFcHandler(ok, {
      env: {},
      logger: memoryLogger(),
      async: { mode: 'local' },
      destinations: { onFailure: (r) => void delivered.push(r) },
      tracing: { newTracePerAttempt: true },
    });
    await handler(asyncEvent({ method: 'POST', taskId: 'later', delay: '60' }), context);
    await handler.tasks.stop('later');
    await handler.drain();
    expect(delivered).toHaveLength(1);
    const ended = only(sdk.spans(), 'process demo');
    const delivery = only(sdk.spans(), 'deliver onFailure');
    expect(ended.attributes['fc_async.condition']).toBe('Stopped');
    expect([delivery.spanContext().traceId, parentOf(delivery)]).toEqual([ended.spanContext().traceId, idOf(ended)]);
  });
});
