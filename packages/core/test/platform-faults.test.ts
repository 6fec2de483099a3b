import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createFcHandler,
  type DestinationRecord,
  type Fc2Request,
  type FcContext,
  type FcHttpResult,
  getInvocation,
  type Invocation,
} from '../src/index.js';
import { deferred, event, type Listener, memoryLogger } from './helpers.js';

const FC_ENV = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };

/** The context of FC's built-in runtime: the retry count of an async invocation is here, not in the event. */
const fcContext = (retryCount?: unknown): FcContext =>
  ({
    requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
    region: 'cn-hangzhou',
    accountId: '123',
    function: { name: 'transcode' },
    retryCount,
  }) as FcContext;

/** An FC 3.0 event as FC passes it: the client's headers, none of FC's own. */
const asyncEvent = () => event({ method: 'POST', body: '{"v":1}', headers: { 'X-Fc-Invocation-Type': 'Async' } });

function setup(app: Listener, destinations?: { onSuccess?: () => unknown }) {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const handler = createFcHandler(app, {
    env: FC_ENV,
    logger: memoryLogger(),
    async: { maxAsyncRetryAttempts: 2 },
    destinations: {
      onSuccess: destinations?.onSuccess ?? ((r) => void successes.push(r)),
      onFailure: (r) => void failures.push(r),
    },
  });
  return { handler, successes, failures };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('platform mode: the retry count of built-in runtimes', () => {
  it('reads FC’s context.retryCount: a retry is async, and the last one calls onFailure once', async () => {
    const seen: Invocation[] = [];
    const { handler, failures } = setup((req, res) => {
      seen.push(getInvocation(req) as Invocation);
      res.statusCode = 500;
      res.end();
    });
    const retry = event({ method: 'POST', body: '{"v":1}' }); // the client's headers hold no async signal
    await expect(handler(retry, fcContext(1))).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    expect(failures).toHaveLength(0);
    await expect(handler(asyncEvent(), fcContext(2))).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    expect(seen.map((s) => [s.type, s.attempt, s.source])).toEqual([
      ['Async', 1, 'retry-count'],
      ['Async', 2, 'invocation-type'],
    ]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext).toMatchObject({
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 3,
    });
  });

  it('ignores a context.retryCount that is not a whole number instead of refusing the request', async () => {
    const { handler, successes } = setup((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(String(getInvocation(req)?.attempt));
    });
    for (const retryCount of [-1, 1.5, Number.NaN, 'x', null, {}]) {
      const result = await handler(asyncEvent(), fcContext(retryCount));
      expect([result.statusCode, result.body]).toEqual([200, '0']);
    }
    expect(successes).toHaveLength(6);
  });
});

describe('platform mode: destinations never hold the answer past 10 s', () => {
  it('answers by 10 s when a destination never settles, with the app’s own result', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { handler } = setup(
      (_req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end('done');
      },
      { onSuccess: () => new Promise(() => undefined) },
    );
    let result: FcHttpResult | undefined;
    void handler(asyncEvent(), fcContext(0)).then((r) => {
      result = r;
    });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toMatchObject({ statusCode: 200, body: 'done' });
    await handler.drain();
    // The log says why the delivery failed: the bound, not a bare "aborted".
    const logger = handler.logger as ReturnType<typeof memoryLogger>;
    expect(logger.entries.find((e) => e.message.includes('giving up'))?.fields).toMatchObject({
      code: 'DestinationAborted',
      error: expect.stringContaining("platform mode's 10 s bound"),
    });
  });
});

/** FC 2.0's `resp`, recording what the handler sent. */
function fc2Response() {
  const sent: { status?: number; body?: unknown; sends: number } = { sends: 0 };
  return {
    sent,
    setStatusCode: (n: number) => {
      sent.status = n;
    },
    setHeader: () => undefined,
    deleteHeader: () => undefined,
    send: (body: unknown) => {
      sent.sends++;
      sent.body = body;
    },
  };
}

function fc2Request(headers: Record<string, string>): Fc2Request {
  return Object.assign(Readable.from([Buffer.from('{"v":1}')]), {
    headers: { 'content-type': 'application/json', ...headers },
    path: '/jobs',
    queries: {},
    method: 'POST',
    clientIP: '10.0.0.1',
  }) as unknown as Fc2Request;
}

describe('platform mode: every entry point reports a failed async attempt as FC counts it', () => {
  const failing: Listener = (_req, res) => {
    res.statusCode = 503;
    res.end('busy');
  };

  it('FC 3.0 with a callback: called once, with the error for a failed attempt, with the 503 for a sync call', async () => {
    const { handler } = setup(failing);
    const call = (e: unknown, retryCount: number) =>
      new Promise<{ calls: number; error: unknown; result?: FcHttpResult }>((resolve) => {
        const seen = { calls: 0, error: undefined as unknown, result: undefined as FcHttpResult | undefined };
        handler(e, fcContext(retryCount), (error, result) => {
          seen.calls++;
          seen.error = error;
          seen.result = result;
          setImmediate(() => resolve(seen));
        });
      });
    const failed = await call(asyncEvent(), 0);
    expect([failed.calls, failed.result]).toEqual([1, undefined]);
    expect(failed.error).toMatchObject({ code: 'UnhandledInvocationError' });
    const sync = await call(event(), 0);
    expect([sync.calls, sync.error, sync.result?.statusCode]).toEqual([1, null, 503]);
    const malformed = await call(Buffer.from('not json'), 0);
    expect([malformed.calls, malformed.error, malformed.result?.statusCode]).toEqual([1, null, 400]);
  });

  it('FC 2.0: rejects without sending for a failed attempt; sends a sync 503 as the app answered it', async () => {
    const { handler } = setup(failing);
    const asyncResp = fc2Response();
    await expect(handler(fc2Request({ 'x-fc-async-task-id': 'job_7' }), asyncResp, fcContext(0))).rejects.toMatchObject(
      { code: 'UnhandledInvocationError' },
    );
    expect(asyncResp.sent.sends).toBe(0);
    const syncResp = fc2Response();
    await handler(fc2Request({}), syncResp, fcContext(0));
    expect(syncResp.sent).toMatchObject({ status: 503, sends: 1 });
    expect(String(syncResp.sent.body)).toBe('busy');
  });
});

describe('platform mode: concurrent invocations in one instance', () => {
  it('keep their own invocation, outcome and destination record when they interleave', async () => {
    const gates = { '1-a': deferred(), '1-b': deferred() };
    const seen: Record<string, string | undefined> = {};
    const { handler, successes, failures } = setup(async (req, res) => {
      const id = getInvocation(req)?.requestId as keyof typeof gates;
      await gates[id].promise;
      seen[id] = getInvocation(req)?.requestId;
      if (id === '1-a') throw new Error('a failed');
      res.setHeader('content-type', 'text/plain');
      res.end(id);
    });
    const call = (requestId: string, retryCount: number) =>
      handler(asyncEvent(), { ...fcContext(retryCount), requestId });
    const a = call('1-a', 2);
    const b = call('1-b', 0);
    gates['1-b'].resolve();
    await expect(b).resolves.toMatchObject({ statusCode: 200, body: '1-b' });
    gates['1-a'].resolve();
    await expect(a).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    expect(seen).toEqual({ '1-a': '1-a', '1-b': '1-b' });
    expect(successes.map((r) => [r.requestContext.requestId, r.responsePayload])).toEqual([['1-b', '1-b']]);
    expect(failures.map((r) => [r.requestContext.requestId, r.requestContext.approximateInvokeCount])).toEqual([
      ['1-a', 3],
    ]);
  });
});
