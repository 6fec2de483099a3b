import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createFcHandler, type DestinationRecord, getInvocation, type Invocation } from '../src/index.js';
import { event, memoryLogger } from './helpers.js';

const FC_ENV = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const context = {
  requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  region: 'cn-hangzhou',
  accountId: '123',
  function: { name: 'transcode' },
};

function setup(app: (req: IncomingMessage, res: ServerResponse) => unknown) {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const handler = createFcHandler(app, {
    env: FC_ENV,
    logger: memoryLogger(),
    async: { maxAsyncRetryAttempts: 2 },
    destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
  });
  return { handler, successes, failures };
}

// On FC the runtime sees the retry count; the task id when the caller chose one.
const onFc = (retry: number, extra: Record<string, string> = {}) =>
  event({
    method: 'POST',
    body: '{"v":1}',
    headers: {
      'Content-Type': 'application/json',
      'X-Fc-Retry-Count': String(retry),
      'X-Fc-Async-Task-Id': 'job_7',
      ...extra,
    },
  });

describe('platform mode (FC queued the request)', () => {
  it('an async call without a task id gives the app the request id as its task id, as FC takes it (and local mode gives it)', async () => {
    const seen: (string | undefined)[] = [];
    const { handler } = setup((req, res) => {
      seen.push(getInvocation(req)?.taskId);
      res.end();
    });
    await handler(event({ headers: { 'X-Fc-Invocation-Type': 'Async' } }), context);
    await handler(event({ headers: { 'X-Fc-Retry-Count': '1' } }), {
      ...context,
      requestId: '1-64f6d6e7-e01edb1cce58240ed59b59da',
    });
    await handler(event({}), context);
    expect(seen).toEqual([context.requestId, '1-64f6d6e7-e01edb1cce58240ed59b59da', undefined]);
  });

  it("a HEAD call's destination record has no response body, whatever the app wrote", async () => {
    const { handler, successes } = setup((_req, res) => res.end('{"written":"anyway"}'));
    const result = await handler(
      event({ method: 'HEAD', headers: { 'X-Fc-Retry-Count': '0', 'X-Fc-Async-Task-Id': 'head_1' } }),
      context,
    );
    expect([result.statusCode, result.body]).toEqual([200, '']);
    expect(successes.map((r) => r.responsePayload)).toEqual(['']);
  });

  it('is chosen automatically on FC and runs the app at once, detected Async', async () => {
    let seen: Invocation | undefined;
    const { handler, successes } = setup((req, res) => {
      seen = getInvocation(req);
      res.setHeader('content-type', 'text/plain');
      res.end('done');
    });
    expect(handler.mode).toBe('platform');
    const result = await handler(onFc(0), context);
    expect(result.statusCode).toBe(200);
    expect(result.body).toBe('done');
    expect(seen).toMatchObject({
      type: 'Async',
      taskId: 'job_7',
      attempt: 0,
      source: 'task-id',
      functionName: 'transcode',
    });
    expect(successes).toHaveLength(1);
    expect(successes[0]?.requestContext).toMatchObject({
      requestId: context.requestId,
      functionArn: 'acs:fc:cn-hangzhou:123:functions/transcode',
      condition: '',
      approximateInvokeCount: 1,
    });
  });

  it('a failed attempt before the last: no destination, and the handler throws so FC retries', async () => {
    const { handler, successes, failures } = setup((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    await expect(handler(onFc(1), context)).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    expect(successes).toHaveLength(0);
    expect(failures).toHaveLength(0);
  });

  it('the final attempt (retry count ≥ maxAsyncRetryAttempts) calls onFailure once', async () => {
    const { handler, failures } = setup(() => {
      throw new Error('ffmpeg exited 1');
    });
    await expect(handler(onFc(2), context)).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext).toMatchObject({
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 3,
    });
    expect(JSON.parse(failures[0]?.responsePayload ?? '')).toEqual({
      errorMessage: 'ffmpeg exited 1',
      errorType: 'Error',
    });
  });

  it('a throw of something String() cannot read (Object.create(null)) is a failure FC retries, not a 500 it counts a success', async () => {
    const { handler, failures } = setup(() => {
      throw Object.create(null);
    });
    await expect(handler(onFc(2), context)).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    expect(JSON.parse(failures[0]?.responsePayload ?? '')).toEqual({
      errorMessage: '[object Object]',
      errorType: 'Error',
    });
  });

  it('a retry on FC is detected from x-fc-retry-count alone', async () => {
    let seen: Invocation | undefined;
    const { handler } = setup((req, res) => {
      seen = getInvocation(req);
      res.end();
    });
    await handler(event({ headers: { 'X-Fc-Retry-Count': '1' } }), context);
    expect(seen).toMatchObject({ type: 'Async', attempt: 1, source: 'retry-count' });
  });

  it('sync invocations call no destination', async () => {
    const { handler, successes } = setup((_req, res) => res.end('ok'));
    expect((await handler(event(), context)).statusCode).toBe(200);
    expect(successes).toHaveLength(0);
  });

  it('the tasks API says FC keeps the tasks', async () => {
    const { handler } = setup((_req, res) => res.end());
    await expect(handler.tasks.list()).rejects.toMatchObject({ code: 'NotAvailableInPlatformMode' });
  });
});

describe('platform mode: the invocation signal', () => {
  // On Node 20 an AbortSignal costs about 10 µs to make. FC 3.0's and FC 2.0's handlers have
  // nothing that can end an async call before its answer, so none is made unless the app reads it.
  it('an async call on FC makes no AbortSignal when the app does not read one, and a signal that never aborts when it does', async () => {
    const made: number[] = [];
    const Controller = globalThis.AbortController;
    const counting = class extends Controller {
      override get signal(): AbortSignal {
        made.push(1);
        return super.signal;
      }
    };
    const seen: AbortSignal[] = [];
    // No destinations: a delivery has a signal of its own, bounding it.
    const handler = createFcHandler(
      (req, res) => {
        if (req.url?.startsWith('/reads')) seen.push(getInvocation(req)?.signal as AbortSignal);
        res.end('done');
      },
      { env: FC_ENV, logger: memoryLogger() },
    );
    globalThis.AbortController = counting;
    try {
      for (let retry = 0; retry < 3; retry++) expect((await handler(onFc(retry), context)).statusCode).toBe(200);
      expect(made).toHaveLength(0);
      const reads = event({ method: 'POST', path: '/reads', headers: { 'X-Fc-Retry-Count': '0' } });
      expect((await handler(reads, context)).statusCode).toBe(200);
    } finally {
      globalThis.AbortController = Controller;
    }
    expect(made).toHaveLength(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.aborted).toBe(false);
  });
});
