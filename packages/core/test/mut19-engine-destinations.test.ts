import { describe, expect, it, vi } from 'vitest';
import type { DestinationRecord } from '../src/fc-types.js';
import { type AsyncBackend, createFcHandler, MemoryTaskStore, PQueueDriver, serializeRequest } from '../src/index.js';
import { asyncEvent, context, event, memoryLogger, ok, setup } from './helpers.js';

// Behaviour the session-19 mutation audit of destinations found no test for.

describe('a delivery cut short by two shutdowns in a row', () => {
  it('remembers every destination that took the record, so the third start calls only the last one', async () => {
    const store = new MemoryTaskStore();
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store, queue: new PQueueDriver(2) }),
    };
    const calls: string[] = [];
    const takes = (name: string) => () => void calls.push(name);
    const hangs = () => new Promise<void>(() => {});
    const start = (onSuccess: (() => unknown)[]) =>
      createFcHandler(ok, {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', backend: durable, stopGraceMs: 20 },
        destinations: { onSuccess },
      });

    // First start: only the first destination takes the record before close() cuts the others.
    const first = start([takes('a, first start'), hangs, hangs]);
    await first(asyncEvent({ taskId: 'twice' }), context);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    await first.close({ timeoutMs: 30, stopWithinMs: 200 });
    expect(store.get('twice')).toMatchObject({ deliveryPending: true, deliveredTo: [0] });

    // Second start: the second destination takes it, the third is cut again.
    const second = start([takes('a, second start'), takes('b, second start'), hangs]);
    await second.tasks.get('twice');
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    await second.close({ timeoutMs: 30, stopWithinMs: 200 });
    expect(store.get('twice')).toMatchObject({ deliveryPending: true, deliveredTo: [0, 1] });

    // Third start: only the third destination is owed.
    const third = start([takes('a, third start'), takes('b, third start'), takes('c, third start')]);
    await third.tasks.get('twice');
    await third.drain();
    expect(calls).toEqual(['a, first start', 'b, second start', 'c, third start']);
    expect(store.get('twice')).toMatchObject({ destinationStatus: 'Succeeded' });
    expect(store.get('twice')?.deliveredTo).toBeUndefined();
    await third.close();
  });
});

describe("a destination record's requestPayload", () => {
  it("holds none of FC's gateway controls, x-fc-log-type included", async () => {
    const { handler, successes } = setup(ok);
    await handler(
      asyncEvent({ method: 'POST', headers: { 'X-Fc-Log-Type': 'Tail', 'x-kept': 'yes' }, body: 'b' }),
      context,
    );
    await handler.drain();
    const headers = JSON.parse(successes[0]?.requestPayload ?? '{}').headers as Record<string, string>;
    expect(headers['x-kept']).toBe('yes');
    for (const name of ['x-fc-invocation-type', 'x-fc-log-type']) expect(headers).not.toHaveProperty(name);
    await handler.close();
  });
});

describe("an onFailure record of a function's own error answer", () => {
  it('keeps an errorMessage of 4,096 characters whole, and cuts one character more to 4,096 and …', async () => {
    const { handler, failures } = setup(
      (req, res) => {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
        const length = req.url === '/whole' ? 4096 : 4097;
        res.end(JSON.stringify({ errorMessage: 'x'.repeat(length), errorType: 'TooLong' }));
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent({ method: 'POST', path: '/whole' }), context);
    await handler(asyncEvent({ method: 'POST', path: '/cut' }), context);
    await handler.drain();
    const messages = failures.map((f) => [
      JSON.parse(f.requestPayload).url,
      JSON.parse(f.responsePayload).errorMessage,
    ]);
    expect(messages.sort()).toEqual([
      ['/cut', `${'x'.repeat(4096)}…`],
      ['/whole', 'x'.repeat(4096)],
    ]);
    await handler.close();
  });
});

describe('platform mode, a retry that would end past the function timeout', () => {
  it("is not waited for: delivery gives up at once with the destination's own error", async () => {
    // Full jitter drawn at its top: the first retry waits 495 ms, the second would wait 990 ms.
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const logger = memoryLogger();
    let calls = 0;
    const handler = createFcHandler(ok, {
      env: { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' },
      logger,
      destinations: {
        onSuccess: () => {
          calls++;
          throw new Error('receiver down');
        },
      },
    });
    try {
      // A 1 s function timeout leaves about 890 ms to deliver: no room for the second wait.
      await handler(event({ method: 'POST', headers: { 'X-Fc-Retry-Count': '0', 'X-Fc-Invocation-Type': 'Async' } }), {
        ...context,
        function: { name: 'f', timeout: 1 },
      });
      expect(calls).toBeGreaterThanOrEqual(1);
      const gaveUp = logger.entries.filter((e) => e.message === 'fc-async: destination delivery failed, giving up');
      expect(gaveUp).toHaveLength(1);
      expect(gaveUp[0]?.fields).toMatchObject({ code: 'Error', error: 'receiver down' });
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe("an event invocation's requestPayload (FC's control path /invoke)", () => {
  it('is the event itself, as FC records it: its text, or base64 when not UTF-8', () => {
    const invoke = (body: Buffer) =>
      serializeRequest({
        method: 'POST',
        url: '/invoke',
        headers: { 'x-fc-control-path': '/invoke', 'content-type': 'application/octet-stream' },
        body,
      });
    expect(invoke(Buffer.from('{"bucket":"b"}'))).toBe('{"bucket":"b"}');
    expect(invoke(Buffer.from([0xff, 0xfe, 0x00]))).toBe('//4A');
  });
});

describe('the onFailure record of an attempt its process did not live through', () => {
  it('has statusCode 0: the attempt neither answered nor timed out', async () => {
    const store = new MemoryTaskStore();
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store, queue: new PQueueDriver(2) }),
    };
    const async = { mode: 'local' as const, timeoutSeconds: 600, maxAsyncRetryAttempts: 0, backend: durable };
    // The first process runs the task and dies with it (never closed).
    const crashed = createFcHandler(() => new Promise(() => {}), { logger: memoryLogger(), env: {}, async });
    await crashed(asyncEvent({ taskId: 'cut' }), context);
    await vi.waitFor(() => expect(store.get('cut')?.status).toBe('Running'));
    const failures: DestinationRecord[] = [];
    const next = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async,
      destinations: { onFailure: (r) => void failures.push(r) },
    });
    await next.tasks.get('cut');
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(failures[0]?.responseContext.statusCode).toBe(0);
    expect(failures[0]?.responseContext.functionError).toBe(failures[0]?.requestContext.condition);
    await next.close();
  });
});

describe('a failed answer whose errorMessage is not a string', () => {
  it('is recorded by its HTTP status, as a body without one is', async () => {
    const { handler, failures } = setup(
      (_req, res) => {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
        res.end('{"errorMessage":42,"errorType":"Odd"}');
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent(), context);
    await handler.drain();
    expect(failures.map((f) => JSON.parse(f.responsePayload))).toEqual([
      { errorMessage: 'The function answered HTTP 500', errorType: 'HTTP500' },
    ]);
    await handler.close();
  });
});
