import type { IncomingMessage, ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AsyncBackend,
  type AsyncOptions,
  type AsyncTask,
  createFcHandler,
  type DestinationRecord,
  fcHttpEvent,
  getInvocation,
  type Invocation,
  isFcRequestId,
  MemoryTaskStore,
  memory,
} from '../src/index.js';
import { asyncEvent, context, deferred, event, json, ok, setup, tick } from './helpers.js';

const statuses = (task: AsyncTask | undefined) => task?.events.map((e) => e.status);

afterEach(() => {
  vi.useRealTimers();
});

describe('accepting an async request (local mode)', () => {
  it('answers 202 before the app runs, with a request id and the task id, empty body', async () => {
    const gate = deferred();
    let ran = 0;
    const { handler } = setup(async (req, res) => {
      ran++;
      await gate.promise;
      ok(req, res);
    });
    const result = await handler(
      asyncEvent({ method: 'POST', path: '/jobs', body: '{"a":1}', headers: { 'Content-Type': 'application/json' } }),
      context,
    );
    expect(result.statusCode).toBe(202);
    expect(result.body).toBe('');
    const requestId = result.headers['x-fc-request-id'] as string;
    expect(isFcRequestId(requestId)).toBe(true);
    expect(result.headers['x-fc-async-task-id']).toBe(requestId);
    expect(ran).toBe(0);
    gate.resolve();
    await handler.drain();
    expect(ran).toBe(1);
    expect((await handler.tasks.get(requestId))?.status).toBe('Succeeded');
  });

  it('uses the caller-chosen task id and refuses a known one with 409, logged at info (a retry after a 503 meets it)', async () => {
    const { handler, logger } = setup(ok);
    const first = await handler(asyncEvent({ taskId: 'resize_42' }), context);
    expect(first.statusCode).toBe(202);
    expect(first.headers['x-fc-async-task-id']).toBe('resize_42');
    const again = await handler(asyncEvent({ taskId: 'resize_42' }), context);
    expect(again.statusCode).toBe(409);
    expect(json(again)).toMatchObject({ code: 'AsyncTaskAlreadyExists' });
    const lines = logger.entries.filter((e) => e.message === 'request rejected');
    expect(lines.map((e) => [e.level, e.fields?.code])).toEqual([['info', 'AsyncTaskAlreadyExists']]);
    await handler.drain();
  });

  it.each([
    ['a task id breaking FC rule', { 'X-Fc-Async-Task-Id': '9starts-with-digit' }],
    ['a task id longer than 128', { 'X-Fc-Async-Task-Id': `t${'x'.repeat(128)}` }],
    ['an unknown invocation type', { 'X-Fc-Invocation-Type': 'Later' }],
  ])('400 for %s', async (_label, headers) => {
    const { handler } = setup(ok);
    const result = await handler(event({ headers: { 'X-Fc-Invocation-Type': 'Async', ...headers } }), context);
    expect(result.statusCode).toBe(400);
    expect(json(result)).toMatchObject({ code: 'InvalidArgument' });
    expect((await handler.tasks.list()).tasks).toHaveLength(0);
  });

  it('accepts the invocation type case-insensitively', async () => {
    const { handler } = setup(ok);
    const result = await handler(event({ headers: { 'x-fc-invocation-type': 'aSyNc' } }), context);
    expect(result.statusCode).toBe(202);
    await handler.drain();
  });

  it("400 InvalidArgument (FC HTTP trigger's code) for a body over maxAsyncPayloadBytes, and queues nothing", async () => {
    const { handler } = setup(ok, { maxAsyncPayloadBytes: 10 });
    const result = await handler(asyncEvent({ method: 'POST', body: 'x'.repeat(11) }), context);
    expect(result.statusCode).toBe(400);
    expect(json(result)).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/11 bytes, above the limit of 10/),
    });
    expect((await handler.tasks.list()).tasks).toHaveLength(0);
    expect((await handler(asyncEvent({ method: 'POST', body: 'x'.repeat(10) }), context)).statusCode).toBe(202);
    await handler.drain();
  });

  it.each(['0', '3600', '-1', '1.5', 'soon'])('400 for x-fc-async-delay %s', async (delay) => {
    const { handler } = setup(ok);
    const result = await handler(asyncEvent({ delay }), context);
    expect(result.statusCode).toBe(400);
    expect(json(result)).toMatchObject({ code: 'InvalidArgument' });
  });

  it('honours x-fc-async-delay', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let ranAt = 0;
    const { handler } = setup((req, res) => {
      ranAt = Date.now();
      ok(req, res);
    });
    const result = await handler(asyncEvent({ delay: '5' }), context);
    const id = result.headers['x-fc-async-task-id'] as string;
    await vi.advanceTimersByTimeAsync(4_900);
    expect(ranAt).toBe(0);
    expect((await handler.tasks.get(id))?.status).toBe('Enqueued');
    await vi.advanceTimersByTimeAsync(200);
    await handler.drain();
    expect(ranAt).toBeGreaterThanOrEqual(1_700_000_005_000);
    expect((await handler.tasks.get(id))?.status).toBe('Succeeded');
  });

  it('429 with Retry-After when maxQueuedTasks are waiting, and queues nothing', async () => {
    const gate = deferred();
    const running = deferred();
    const { handler, logger } = setup(
      async (req, res) => {
        running.resolve();
        await gate.promise;
        ok(req, res);
      },
      { concurrency: 1, maxQueuedTasks: 2 },
    );
    expect((await handler(asyncEvent(), context)).statusCode).toBe(202);
    await running.promise; // the first one is running now
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await handler(asyncEvent(), context)).statusCode);
    // one running, two waiting, then full
    expect(codes).toEqual([202, 202, 429, 429]);
    const rejected = await handler(asyncEvent(), context);
    expect(rejected.headers['retry-after']).toBe('1');
    expect(json(rejected)).toMatchObject({ code: 'ResourceThrottled' });
    expect((await handler.tasks.list()).tasks).toHaveLength(3);
    // Three refusals, one log line (a burst refuses thousands): at most one each 10 s.
    expect(logger.entries.filter((e) => e.level === 'warn').map((e) => e.message)).toEqual([
      'async requests refused with 429 ResourceThrottled',
    ]);
    gate.resolve();
    await handler.drain();
  });
});

describe('attempts', () => {
  it("keeps at most 4 KB of a function error body's errorMessage", async () => {
    const long = 'x'.repeat(10_000);
    const { handler } = setup(
      (_req, res) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ errorMessage: long, errorType: 'Error' }));
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent({ method: 'POST', taskId: 'long_error' }), context);
    await handler.drain();
    expect((await handler.tasks.get('long_error'))?.taskErrorMessage).toBe(`${'x'.repeat(4096)}…`);
  });

  it.each([
    ['an FC function error body', '{"errorMessage":"disk full","errorType":"IOError"}', 'disk full', 'IOError'],
    ['any other body', 'Internal oops', 'The function answered HTTP 500', 'HTTP500'],
    ['JSON without errorMessage', '{"error":"x"}', 'The function answered HTTP 500', 'HTTP500'],
  ])(
    'a failed answer with %s gives the task and the onFailure record their error',
    async (_name, body, message, type) => {
      const { handler, failures } = setup(
        (_req, res) => {
          res.statusCode = 500;
          res.setHeader('content-type', 'application/json');
          res.end(body);
        },
        { maxAsyncRetryAttempts: 0 },
      );
      const result = await handler(asyncEvent({ method: 'POST', taskId: 'err_body' }), context);
      expect(result.statusCode).toBe(202);
      await handler.drain();
      expect((await handler.tasks.get('err_body'))?.taskErrorMessage).toBe(message);
      expect(failures).toHaveLength(1);
      expect(JSON.parse(failures[0]?.responsePayload as string)).toEqual({ errorMessage: message, errorType: type });
    },
  );

  const FC_ERROR = '{"errorMessage":"disk full","errorType":"IOError"}';
  it.each([
    ['gzip', zlib.gzipSync(FC_ERROR), 'disk full', 'IOError'],
    ['br', zlib.brotliCompressSync(FC_ERROR), 'disk full', 'IOError'],
    ['deflate', zlib.deflateSync(FC_ERROR), 'disk full', 'IOError'],
    // Labelled gzip but sent as it is: read as it came.
    ['gzip', Buffer.from(FC_ERROR), 'disk full', 'IOError'],
    // Past the 64 KiB of an error body once decoded: not a function error's.
    ['gzip', zlib.gzipSync(`{"errorMessage":"${'x'.repeat(70_000)}"}`), 'The function answered HTTP 500', 'HTTP500'],
  ])('a failed answer compressed with %s (%#) is read decoded for its error', async (encoding, body, message, type) => {
    const { handler, failures } = setup(
      (_req, res) => {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
        res.setHeader('content-encoding', encoding);
        res.end(body);
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent({ method: 'POST', taskId: 'err_coded' }), context);
    await handler.drain();
    expect((await handler.tasks.get('err_coded'))?.taskErrorMessage).toBe(message);
    expect(JSON.parse(failures[0]?.responsePayload as string)).toEqual({ errorMessage: message, errorType: type });
  });

  it('isFailure sees the answer as the app sent it, compressed, with its content-encoding (docs/async.md)', async () => {
    const seen: [unknown, string][] = [];
    const { handler, failures } = setup(
      (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.setHeader('content-encoding', 'gzip');
        res.end(zlib.gzipSync('{"ok":false}'));
      },
      {
        maxAsyncRetryAttempts: 0,
        isFailure: (response) => {
          const body = Buffer.from(response.body);
          seen.push([response.headers['content-encoding'], body.subarray(0, 2).toString('hex')]);
          return JSON.parse(zlib.gunzipSync(body).toString('utf8')).ok === false;
        },
      },
    );
    await handler(asyncEvent({ method: 'POST', taskId: 'not_ok' }), context);
    await handler.drain();
    // gzip's magic bytes: the body as sent.
    expect(seen).toEqual([['gzip', '1f8b']]);
    expect((await handler.tasks.get('not_ok'))?.status).toBe('Failed');
    expect(failures[0]?.responseContext.statusCode).toBe(200);
  });

  it('replays the captured request; the app sees Async, the task id, the attempt and a signal', async () => {
    const seen: {
      inv: Invocation | undefined;
      method?: string;
      url?: string;
      body: string;
      headers: Record<string, unknown>;
    }[] = [];
    const { handler } = setup(async (req, res) => {
      let body = '';
      for await (const c of req) body += c;
      seen.push({ inv: getInvocation(req), method: req.method, url: req.url, body, headers: { ...req.headers } });
      ok(req, res);
    });
    const result = await handler(
      asyncEvent({
        method: 'PUT',
        path: '/videos/a%20b',
        query: { format: 'mp4' },
        body: 'héllo',
        taskId: 'job_1',
        headers: { 'Content-Type': 'text/plain', 'X-Custom': 'yes' },
      }),
      context,
    );
    await handler.drain();
    expect(seen).toHaveLength(1);
    const [s] = seen;
    expect(s?.method).toBe('PUT');
    expect(s?.url).toBe('/videos/a%20b?format=mp4');
    expect(s?.body).toBe('héllo');
    expect(s?.headers['content-length']).toBe(String(Buffer.byteLength('héllo')));
    expect(s?.headers['x-custom']).toBe('yes');
    expect(s?.headers['x-fc-retry-count']).toBe('0');
    expect(s?.headers['x-fc-invocation-type']).toBeUndefined();
    expect(s?.inv).toMatchObject({
      type: 'Async',
      taskId: 'job_1',
      attempt: 0,
      requestId: result.headers['x-fc-request-id'],
      functionName: 'demo',
      region: 'cn-hangzhou',
      accountId: '123',
    });
    expect(s?.inv?.signal).toBeInstanceOf(AbortSignal);
  });

  it('an attempt sees the identity a sync call sees when FC gives none (no ARN stand-ins), the name from async.functionName', async () => {
    const seen: Pick<Invocation, 'type' | 'region' | 'accountId' | 'functionName'>[] = [];
    const { handler } = setup(
      (req, res) => {
        const { type, region, accountId, functionName } = getInvocation(req) ?? ({} as Invocation);
        seen.push({ type, region, accountId, functionName });
        res.end('ok');
      },
      { functionName: 'orders' },
    );
    await handler(fcHttpEvent({ url: '/', accountId: '999' }), {});
    await handler(fcHttpEvent({ url: '/', headers: { 'x-fc-invocation-type': 'Async' } }), {});
    await handler.drain();
    expect(seen).toEqual([
      { type: 'Sync', region: '', accountId: '', functionName: '' },
      { type: 'Async', region: '', accountId: '', functionName: 'orders' },
    ]);
    // The task's ARN keeps FC's shape with its stand-ins.
    expect((await handler.tasks.list({})).tasks[0]?.functionArn).toBe('acs:fc:local:0:functions/orders');
  });

  it('retries a failing app, counting attempts, then succeeds; the status walk is recorded', async () => {
    let calls = 0;
    const attempts: number[] = [];
    const { handler, successes, failures } = setup((req, res) => {
      attempts.push(getInvocation(req)?.attempt ?? -1);
      calls++;
      if (calls < 3) {
        res.statusCode = 503;
        res.end('busy');
        return;
      }
      ok(req, res);
    });
    const id = (await handler(asyncEvent(), context)).headers['x-fc-async-task-id'] as string;
    await handler.drain();
    const task = await handler.tasks.get(id);
    expect(attempts).toEqual([0, 1, 2]);
    expect(task).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 2, returnPayload: '{"ok":true}' });
    expect(statuses(task)).toEqual([
      'Enqueued',
      'Dequeued',
      'Running',
      'Retrying',
      'Dequeued',
      'Running',
      'Retrying',
      'Dequeued',
      'Running',
      'Succeeded',
    ]);
    expect(task?.events.map((e) => e.eventId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(successes).toHaveLength(1);
    expect(failures).toHaveLength(0);
    expect(successes[0]?.requestContext).toMatchObject({ condition: '', approximateInvokeCount: 3 });
    expect(successes[0]?.responsePayload).toBe('{"ok":true}');
    expect(task?.durationMs).toBeGreaterThanOrEqual(0);
    expect(task?.endTime).toBeGreaterThanOrEqual(task?.startedTime ?? Infinity);
  });

  it('fails after maxAsyncRetryAttempts with UnhandledInvocationError for a thrown error', async () => {
    let calls = 0;
    const { handler, failures, successes } = setup(
      () => {
        calls++;
        throw new TypeError('disk full');
      },
      { maxAsyncRetryAttempts: 2 },
    );
    const id = (
      await handler(
        asyncEvent({ method: 'POST', body: '{"x":1}', headers: { 'Content-Type': 'application/json' } }),
        context,
      )
    ).headers['x-fc-async-task-id'] as string;
    await handler.drain();
    expect(calls).toBe(3);
    const task = await handler.tasks.get(id);
    expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 2, taskErrorMessage: 'disk full' });
    expect(successes).toHaveLength(0);
    expect(failures).toHaveLength(1);
    const record = failures[0] as DestinationRecord;
    expect(record.requestContext).toMatchObject({
      requestId: task?.requestId,
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 3,
    });
    expect(record.requestContext.functionArn).toBe('acs:fc:cn-hangzhou:123:functions/demo');
    expect(record.responseContext).toEqual({ statusCode: 502, functionError: 'UnhandledInvocationError' });
    expect(JSON.parse(record.responsePayload)).toEqual({ errorMessage: 'disk full', errorType: 'TypeError' });
    expect(JSON.parse(record.requestPayload)).toMatchObject({
      method: 'POST',
      url: '/',
      body: '{"x":1}',
      isBase64Encoded: false,
    });
  });

  it('maxAsyncRetryAttempts 0 runs once', async () => {
    let calls = 0;
    const { handler, failures } = setup(
      (_req, res) => {
        calls++;
        res.statusCode = 500;
        res.end();
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent(), context);
    await handler.drain();
    expect(calls).toBe(1);
    expect(failures[0]?.responseContext.statusCode).toBe(500);
  });

  it('isFailure decides what a failed response is', async () => {
    const { handler, failures, successes } = setup(
      (_req, res) => {
        res.statusCode = 422;
        res.end('no');
      },
      { isFailure: (r) => r.statusCode >= 400, maxAsyncRetryAttempts: 0 },
    );
    await handler(asyncEvent(), context);
    await handler.drain();
    expect(successes).toHaveLength(0);
    expect(failures[0]?.requestContext.condition).toBe('UnhandledInvocationError');
  });

  it('an attempt past timeoutSeconds fails with InvocationError and its signal aborts', async () => {
    let aborted = 0;
    const { handler, failures } = setup(
      (req) => {
        getInvocation(req)?.signal.addEventListener('abort', () => aborted++);
        // never answers
      },
      { timeoutSeconds: 0.05, maxAsyncRetryAttempts: 1 },
    );
    const id = (await handler(asyncEvent(), context)).headers['x-fc-async-task-id'] as string;
    await handler.drain();
    expect(aborted).toBe(2);
    const task = await handler.tasks.get(id);
    expect(task?.status).toBe('Failed');
    expect(task?.taskErrorMessage).toMatch(/timed out/);
    expect(failures[0]?.requestContext.condition).toBe('InvocationError');
    expect(failures[0]?.responseContext.statusCode).toBe(504);
  });

  it('backs off exponentially between retries (fake timers)', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const times: number[] = [];
    const { handler } = setup(
      (_req, res) => {
        times.push(Date.now());
        res.statusCode = 500;
        res.end();
      },
      { maxAsyncRetryAttempts: 3, backoff: { baseMs: 1000, maxMs: 3000, jitter: 'none' } },
    );
    await handler(asyncEvent(), context);
    await vi.advanceTimersByTimeAsync(10_000);
    await handler.drain();
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([1000, 2000, 3000]);
  });

  it('jitter keeps delays within [ceiling/2, ceiling]', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const times: number[] = [];
    const { handler } = setup(
      (_req, res) => {
        times.push(Date.now());
        res.statusCode = 500;
        res.end();
      },
      { maxAsyncRetryAttempts: 2, backoff: { baseMs: 1000, maxMs: 60_000 } },
    );
    await handler(asyncEvent(), context);
    await vi.advanceTimersByTimeAsync(10_000);
    await handler.drain();
    spy.mockRestore();
    expect(times.slice(1).map((t, i) => t - (times[i] as number))).toEqual([750, 1500]);
  });

  it('an event older than maxAsyncEventAgeInSeconds when its attempt would start becomes Expired', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let calls = 0;
    const { handler, failures } = setup(
      (_req, res) => {
        calls++;
        res.statusCode = 500;
        res.end();
      },
      {
        maxAsyncEventAgeInSeconds: 5,
        maxAsyncRetryAttempts: 8,
        backoff: { baseMs: 2000, maxMs: 2000, jitter: 'none' },
      },
    );
    const id = (await handler(asyncEvent(), context)).headers['x-fc-async-task-id'] as string;
    await vi.advanceTimersByTimeAsync(20_000);
    await handler.drain();
    // attempts at 0 s, 2 s, 4 s; the one due at 6 s is past the 5 s age
    expect(calls).toBe(3);
    const task = await handler.tasks.get(id);
    expect(task?.status).toBe('Expired');
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext).toMatchObject({ condition: 'EventAgeExceeded', approximateInvokeCount: 3 });
    // The last attempt's status, as destinations.md says (the message says why the task ended).
    expect(failures[0]?.responseContext.statusCode).toBe(500);
  });

  it('a task stopped while an attempt runs reports no status (0), not the failed attempt before it', async () => {
    let calls = 0;
    const { handler, failures } = setup(
      (_req, res) => {
        calls++;
        if (calls === 1) {
          res.statusCode = 503;
          res.end();
        } // the second attempt never answers
      },
      { maxAsyncRetryAttempts: 3, stopGraceMs: 10 },
    );
    const id = (await handler(asyncEvent(), context)).headers['x-fc-async-task-id'] as string;
    await vi.waitFor(() => expect(calls).toBe(2));
    await handler.tasks.stop(id);
    await handler.drain();
    expect(failures.map((f) => [f.requestContext.condition, f.responseContext.statusCode])).toEqual([['Stopped', 0]]);
  });

  it('a task stopped while backing off reports the status of its last attempt', async () => {
    const { handler, failures } = setup(
      (_req, res) => {
        res.statusCode = 503;
        res.end();
      },
      { maxAsyncRetryAttempts: 3, backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 'none' } },
    );
    const id = (await handler(asyncEvent(), context)).headers['x-fc-async-task-id'] as string;
    await vi.waitFor(async () => expect((await handler.tasks.get(id))?.status).toBe('Retrying'));
    await handler.tasks.stop(id);
    await handler.drain();
    expect(failures.map((f) => [f.requestContext.condition, f.responseContext.statusCode])).toEqual([['Stopped', 503]]);
  });

  it('a delayed event past its age expires without running', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let calls = 0;
    const { handler, failures } = setup(
      (req, res) => {
        calls++;
        ok(req, res);
      },
      { maxAsyncEventAgeInSeconds: 2 },
    );
    await handler(asyncEvent({ delay: '3' }), context);
    await vi.advanceTimersByTimeAsync(4_000);
    await handler.drain();
    expect(calls).toBe(0);
    expect(failures[0]?.requestContext).toMatchObject({ condition: 'EventAgeExceeded', approximateInvokeCount: 0 });
    expect(failures[0]?.responseContext.statusCode).toBe(0);
  });
});

describe('stop', () => {
  it('tells subscribers when an attempt starts and when a stop reaches it (the dashboard refreshes on both)', async () => {
    const { handler } = setup((req, res) => {
      getInvocation(req)?.signal.addEventListener('abort', () => res.end('stopped'));
    });
    const events: string[] = [];
    handler.engine?.subscribe((e) => events.push(`${e.type} ${e.taskId}`));
    await handler(asyncEvent({ taskId: 'watched' }), context);
    await vi.waitFor(() => expect(events).toContain('started watched'));
    await handler.tasks.stop('watched');
    await handler.drain();
    expect(events.slice(0, 3)).toEqual(['accepted watched', 'started watched', 'stopping watched']);
  });

  it('a queued task becomes Stopped without running, and onFailure gets Stopped', async () => {
    const gate = deferred();
    const ran: string[] = [];
    const { handler, failures } = setup(
      async (req, res) => {
        ran.push(getInvocation(req)?.taskId ?? '');
        await gate.promise;
        ok(req, res);
      },
      { concurrency: 1 },
    );
    await handler(asyncEvent({ taskId: 'first' }), context);
    await handler(asyncEvent({ taskId: 'second' }), context);
    const stopped = await handler.tasks.stop('second');
    expect(stopped.status).toBe('Stopped');
    gate.resolve();
    await handler.drain();
    expect(ran).toEqual(['first']);
    expect((await handler.tasks.get('second'))?.status).toBe('Stopped');
    expect(statuses(await handler.tasks.get('second'))).toEqual(['Enqueued', 'Stopped']);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext).toMatchObject({ condition: 'Stopped', approximateInvokeCount: 0 });
  });

  it('a delayed task stops before its time comes', async () => {
    const { handler, failures } = setup(ok);
    await handler(asyncEvent({ taskId: 'later', delay: '100' }), context);
    await handler.tasks.stop('later');
    await handler.drain();
    expect((await handler.tasks.get('later'))?.status).toBe('Stopped');
    expect(failures).toHaveLength(1);
  });

  it('a running task goes Stopping, its signal fires, then Stopped', async () => {
    let signal: AbortSignal | undefined;
    const started = deferred();
    const { handler, failures } = setup((req, res) => {
      signal = getInvocation(req)?.signal;
      started.resolve();
      signal?.addEventListener('abort', () => {
        res.statusCode = 499;
        res.end('aborted');
      });
    });
    await handler(asyncEvent({ taskId: 'long' }), context);
    await started.promise;
    const view = await handler.tasks.stop('long');
    expect(view.status).toBe('Stopping');
    expect(signal?.aborted).toBe(true);
    await handler.drain();
    const task = await handler.tasks.get('long');
    expect(task?.status).toBe('Stopped');
    expect(statuses(task)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext.condition).toBe('Stopped');
  });

  it('an app that ignores the signal is recorded Stopped after stopGraceMs', async () => {
    const started = deferred();
    const { handler } = setup(
      () => {
        started.resolve();
      },
      { stopGraceMs: 20 },
    );
    await handler(asyncEvent({ taskId: 'stubborn' }), context);
    await started.promise;
    await handler.tasks.stop('stubborn');
    await handler.drain();
    expect((await handler.tasks.get('stubborn'))?.status).toBe('Stopped');
  });

  it('stopping a finished task is an error with a code; an unknown one is 404', async () => {
    const { handler } = setup(ok);
    await handler(asyncEvent({ taskId: 'done' }), context);
    await handler.drain();
    await expect(handler.tasks.stop('done')).rejects.toMatchObject({
      code: 'AsyncTaskAlreadyFinished',
      statusCode: 400,
    });
    await expect(handler.tasks.stop('nope')).rejects.toMatchObject({ code: 'AsyncTaskNotFound', statusCode: 404 });
  });
});

describe('concurrency, bursts and at-most-one destination call', () => {
  it('never runs more than `concurrency` attempts at once', async () => {
    let now = 0;
    let peak = 0;
    const { handler } = setup(
      async (req, res) => {
        now++;
        peak = Math.max(peak, now);
        await tick(1);
        now--;
        ok(req, res);
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 30; i++) await handler(asyncEvent(), context);
    await handler.drain();
    expect(peak).toBe(3);
  });

  it('a burst of 10 000: every task terminal, exactly one destination call each', async () => {
    const { handler, successes, failures } = setup(ok, { concurrency: 50 });
    const ids = new Set<string>();
    const results = await Promise.all(Array.from({ length: 10_000 }, () => handler(asyncEvent(), context)));
    for (const r of results) {
      expect(r.statusCode).toBe(202);
      ids.add(r.headers['x-fc-async-task-id'] as string);
    }
    expect(ids.size).toBe(10_000);
    await handler.drain();
    const calls = new Map<string, number>();
    for (const r of [...successes, ...failures])
      calls.set(r.requestContext.requestId, (calls.get(r.requestContext.requestId) ?? 0) + 1);
    expect(calls.size).toBe(10_000);
    expect([...calls.values()].every((c) => c === 1)).toBe(true);
    let terminal = 0;
    let token: string | undefined;
    do {
      const page = await handler.tasks.list({ limit: 100, nextToken: token });
      terminal += page.tasks.filter((t) => t.status === 'Succeeded').length;
      token = page.nextToken;
    } while (token);
    expect(terminal).toBe(10_000);
  }, 60_000);

  it('an app failing 30% of the time: every task terminal, destinations = tasks', async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const { handler, successes, failures } = setup(
      (req, res) => {
        if (random() < 0.3) throw new Error('flaky');
        ok(req, res);
      },
      { concurrency: 20, maxAsyncRetryAttempts: 1 },
    );
    const n = 2000;
    for (let i = 0; i < n; i++) expect((await handler(asyncEvent(), context)).statusCode).toBe(202);
    await handler.drain();
    expect(successes.length + failures.length).toBe(n);
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set([...successes, ...failures].map((r) => r.requestContext.requestId)).size).toBe(n);
    const all: AsyncTask[] = [];
    let token: string | undefined;
    do {
      const page = await handler.tasks.list({ limit: 100, nextToken: token });
      all.push(...page.tasks);
      token = page.nextToken;
    } while (token);
    expect(all).toHaveLength(n);
    expect(all.every((t) => t.status === 'Succeeded' || t.status === 'Failed')).toBe(true);
    expect(all.filter((t) => t.status === 'Failed')).toHaveLength(failures.length);
    expect(all.every((t) => t.destinationStatus === 'Succeeded')).toBe(true);
  });
});

describe('close() and drain()', () => {
  it('new async requests answer 503 while closing; running tasks finish', async () => {
    const gate = deferred();
    const { handler, successes } = setup(async (req, res) => {
      await gate.promise;
      ok(req, res);
    });
    await handler(asyncEvent({ taskId: 'inflight' }), context);
    const closing = handler.close({ timeoutMs: 5_000 });
    const refused = await handler(asyncEvent(), context);
    expect(refused.statusCode).toBe(503);
    expect(json(refused)).toMatchObject({ code: 'ServiceUnavailable' });
    expect(refused.headers['retry-after']).toBe('1'); // another instance may take it
    gate.resolve();
    await closing;
    expect((await handler.tasks.get('inflight'))?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
  });

  it('at the deadline, what is left is stopped and every record is consistent', async () => {
    const { handler, failures } = setup(
      (req) => {
        getInvocation(req)?.signal.addEventListener('abort', () => {});
      },
      { concurrency: 1, stopGraceMs: 10 },
    );
    await handler(asyncEvent({ taskId: 'running' }), context);
    await handler(asyncEvent({ taskId: 'queued' }), context);
    await handler(asyncEvent({ taskId: 'delayed', delay: '60' }), context);
    await tick(5);
    await handler.close({ timeoutMs: 30 });
    for (const id of ['running', 'queued', 'delayed']) {
      expect((await handler.tasks.get(id))?.status).toBe('Stopped');
    }
    expect(failures.map((f) => f.requestContext.condition)).toEqual(['Stopped', 'Stopped', 'Stopped']);
  });

  it('at the deadline, a running task that ignores its stop still reaches onFailure once its grace is over', async () => {
    const delivered: DestinationRecord[] = [];
    const { handler } = setup(
      (req) => {
        getInvocation(req)?.signal.addEventListener('abort', () => {});
      },
      { concurrency: 1, stopGraceMs: 150 },
      {
        // A destination that does I/O (a file, a webhook) ends turns after its call starts.
        destinations: {
          onFailure: async (record) => {
            await tick(20);
            delivered.push(record);
          },
        },
      },
    );
    await handler(asyncEvent({ taskId: 'stubborn' }), context);
    await tick(5);
    await handler.close({ timeoutMs: 30 });
    const task = await handler.tasks.get('stubborn');
    expect(task?.status).toBe('Stopped');
    expect(task?.destinationStatus).toBe('Succeeded');
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
  });

  it('drain() resolves at once when idle', async () => {
    const { handler } = setup(ok);
    await expect(handler.drain()).resolves.toBeUndefined();
  });
});

describe('task records', () => {
  it('have the exact FC AsyncTask shape', async () => {
    const { handler } = setup(ok);
    await handler(
      asyncEvent({ taskId: 'shape', method: 'POST', body: 'hi', headers: { 'Content-Type': 'text/plain' } }),
      context,
    );
    await handler.drain();
    const task = (await handler.tasks.get('shape')) as AsyncTask;
    expect(Object.keys(task).sort()).toEqual(
      [
        'alreadyRetriedTimes',
        'destinationStatus',
        'durationMs',
        'endTime',
        'events',
        'functionArn',
        'qualifier',
        'requestId',
        'returnPayload',
        'startedTime',
        'status',
        'taskId',
        'taskPayload',
      ].sort(),
    );
    expect(task.qualifier).toBe('LATEST');
    expect(JSON.parse(task.taskPayload as string)).toMatchObject({ method: 'POST', body: 'hi' });
    for (const e of task.events)
      expect(Object.keys(e).sort()).toEqual(['eventDetail', 'eventId', 'status', 'timestamp']);
  });

  it('list filters by status, prefix and time, sorts, and pages with nextToken', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { handler } = setup(
      (req, res) => {
        if (getInvocation(req)?.taskId?.startsWith('bad')) throw new Error('no');
        ok(req, res);
      },
      { maxAsyncRetryAttempts: 0 },
    );
    for (let i = 0; i < 5; i++) {
      await handler(asyncEvent({ taskId: `good_${i}` }), context);
      vi.advanceTimersByTime(1000);
    }
    for (let i = 0; i < 3; i++) {
      await handler(asyncEvent({ taskId: `bad_${i}` }), context);
      vi.advanceTimersByTime(1000);
    }
    await vi.runAllTimersAsync();
    await handler.drain();
    const failed = await handler.tasks.list({ status: 'Failed' });
    expect(failed.tasks.map((t) => t.taskId)).toEqual(['bad_2', 'bad_1', 'bad_0']);
    const asc = await handler.tasks.list({ prefix: 'good_', sortOrderByTime: 'asc', limit: 2 });
    expect(asc.tasks.map((t) => t.taskId)).toEqual(['good_0', 'good_1']);
    const next = await handler.tasks.list({
      prefix: 'good_',
      sortOrderByTime: 'asc',
      limit: 2,
      nextToken: asc.nextToken,
    });
    expect(next.tasks.map((t) => t.taskId)).toEqual(['good_2', 'good_3']);
    const last = await handler.tasks.list({
      prefix: 'good_',
      sortOrderByTime: 'asc',
      limit: 2,
      nextToken: next.nextToken,
    });
    expect(last.tasks.map((t) => t.taskId)).toEqual(['good_4']);
    expect(last.nextToken).toBeUndefined();
    const windowed = await handler.tasks.list({
      startedTimeBegin: 1_700_000_001_000,
      startedTimeEnd: 1_700_000_002_000,
      sortOrderByTime: 'asc',
    });
    expect(windowed.tasks.map((t) => t.taskId)).toEqual(['good_1', 'good_2']);
    expect((await handler.tasks.list({ limit: 1 })).tasks[0]?.taskPayload).toBeUndefined();
    expect((await handler.tasks.list({ limit: 1, includePayload: true })).tasks[0]?.taskPayload).toBeTypeOf('string');
    await expect(handler.tasks.list({ limit: 0 })).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(handler.tasks.list({ limit: 101 })).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(handler.tasks.list({ nextToken: 'garbage' })).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('retention keeps at most maxTasks finished tasks, oldest finished first', async () => {
    const { handler } = setup(ok, { backend: memory({ maxTasks: 3 }) });
    for (let i = 0; i < 5; i++) {
      await handler(asyncEvent({ taskId: `t${i}` }), context);
      await handler.drain();
    }
    const ids = (await handler.tasks.list({ sortOrderByTime: 'asc' })).tasks.map((t) => t.taskId);
    expect(ids).toEqual(['t2', 't3', 't4']);
  });

  it('records a compressed answer decoded: returnPayload and responsePayload are the text the app wrote', async () => {
    const json = JSON.stringify({ done: true, note: 'ü'.repeat(500) });
    const encoders: Record<string, (b: Buffer) => Buffer> = {
      gzip: zlib.gzipSync,
      deflate: zlib.deflateSync,
      br: zlib.brotliCompressSync,
      // Not what it says it is: kept as its bytes, in base64.
      bogus: (b) => b,
    };
    const app: typeof ok = (req, res) => {
      const coding = (req.url ?? '').slice(1);
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-encoding', coding === 'bogus' ? 'gzip' : coding);
      res.end((encoders[coding] as (b: Buffer) => Buffer)(Buffer.from(json)));
    };
    const { handler, successes } = setup(app);
    for (const coding of Object.keys(encoders)) {
      await handler(asyncEvent({ taskId: `c_${coding}`, path: `/${coding}` }), context);
    }
    await handler.drain();
    for (const coding of ['gzip', 'deflate', 'br']) {
      expect((await handler.tasks.get(`c_${coding}`))?.returnPayload).toBe(json);
    }
    expect((await handler.tasks.get('c_bogus'))?.returnPayload).toBe(Buffer.from(json).toString('base64'));
    expect(successes.map((r) => r.responsePayload).filter((p) => p === json)).toHaveLength(3);
  });

  it("a task's endTime is its last event's timestamp, however the clock moves between them", async () => {
    let clock = Date.now();
    const now = vi.spyOn(Date, 'now').mockImplementation(() => ++clock);
    try {
      const { handler } = setup(ok);
      await handler(asyncEvent({ taskId: 'ends_once' }), context);
      await handler.drain();
      const task = await handler.tasks.get('ends_once');
      expect(task?.status).toBe('Succeeded');
      expect(task?.events.at(-1)?.timestamp).toBe(task?.endTime);
    } finally {
      now.mockRestore();
    }
  });

  it('records no body for an answer the caller gets without one: HEAD, 204, 304 (an app may write one all the same)', async () => {
    const app: typeof ok = (req, res) => {
      res.statusCode = Number(req.url?.slice(1));
      res.end('{"written":"anyway"}');
    };
    const { handler, successes } = setup(app);
    const calls = [
      { taskId: 'h_200', method: 'HEAD', path: '/200' },
      { taskId: 'g_204', method: 'GET', path: '/204' },
      { taskId: 'g_304', method: 'GET', path: '/304' },
      { taskId: 'g_200', method: 'GET', path: '/200' },
    ];
    for (const call of calls) await handler(asyncEvent(call), context);
    await handler.drain();
    const payloads = await Promise.all(calls.map(async (c) => (await handler.tasks.get(c.taskId))?.returnPayload));
    expect(payloads).toEqual(['', '', '', '{"written":"anyway"}']);
    const records = new Map(successes.map((r) => [r.requestContext.requestId, r.responsePayload]));
    expect([...records.values()].sort()).toEqual(['', '', '', '{"written":"anyway"}']);
  });

  it('records the beginning of a large compressed answer in the task (1 MiB), all of it in the destination record', async () => {
    const big = JSON.stringify({ rows: 'x'.repeat(5 * 1024 * 1024) });
    const app: typeof ok = (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-encoding', 'gzip');
      res.end(zlib.gzipSync(big));
    };
    const { handler, successes } = setup(app);
    await handler(asyncEvent({ taskId: 'big' }), context);
    await handler.drain();
    const recorded = (await handler.tasks.get('big'))?.returnPayload ?? '';
    expect(recorded.startsWith('{"rows":"xxx')).toBe(true);
    expect(recorded.length).toBe(1024 * 1024);
    // The destination record holds the answer whole, as it holds an uncompressed one: not cut at
    // 4 MiB (invalid JSON) because the caller asked for gzip.
    expect(successes[0]?.responsePayload).toBe(big);
  });

  it('records a text answer whose bytes are not UTF-8 in base64, as the handler answers it (U+FFFD before)', async () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
    const app: typeof ok = (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(latin1);
    };
    const { handler, successes } = setup(app);
    await handler(asyncEvent({ taskId: 'latin1' }), context);
    await handler.drain();
    expect((await handler.tasks.get('latin1'))?.returnPayload).toBe(latin1.toString('base64'));
    expect(successes[0]?.responsePayload).toBe(latin1.toString('base64'));
  });

  it('records a compressed text answer whose bytes are not UTF-8 in base64 too, whole (its last bytes were dropped)', async () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
    const app: typeof ok = (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.setHeader('content-encoding', 'gzip');
      res.end(zlib.gzipSync(latin1));
    };
    const { handler, successes } = setup(app);
    await handler(asyncEvent({ taskId: 'latin1_gzip' }), context);
    await handler.drain();
    expect((await handler.tasks.get('latin1_gzip'))?.returnPayload).toBe(latin1.toString('base64'));
    expect(successes[0]?.responsePayload).toBe(latin1.toString('base64'));
  });

  it('records a text request body whose bytes are not UTF-8 in base64, marked so (U+FFFD before)', async () => {
    const latin1 = Buffer.from('name=caf\xe9', 'latin1');
    const { handler, successes } = setup(ok);
    const posted = {
      ...asyncEvent({
        taskId: 'latin1_body',
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      body: latin1.toString('base64'),
      isBase64Encoded: true,
    };
    await handler(posted, context);
    await handler.drain();
    const payload = JSON.parse(successes[0]?.requestPayload ?? '{}') as { body: string; isBase64Encoded: boolean };
    expect(payload).toMatchObject({ isBase64Encoded: true, body: latin1.toString('base64') });
    const task = await handler.tasks.get('latin1_body');
    expect(JSON.parse(task?.taskPayload ?? '{}')).toMatchObject({ isBase64Encoded: true });
  });

  it('keeps as text a compressed UTF-8 answer cut within a character at the decoding cap', async () => {
    // One-, two- and three-byte characters in a seeded order, past the 4 MiB that are decoded: the
    // part decoded (half the input, then half again, until it fits) ends within one of them.
    const chars = ['a', 'ü', '€', 'z', 'é'];
    let text = '';
    for (let x = 1; text.length < 3 * 1024 * 1024; ) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      text += chars[x % chars.length];
    }
    const big = `{"rows":"${text}"}`;
    const app: typeof ok = (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-encoding', 'gzip');
      res.end(zlib.gzipSync(big));
    };
    const { handler } = setup(app);
    await handler(asyncEvent({ taskId: 'cut_utf8' }), context);
    await handler.drain();
    const recorded = (await handler.tasks.get('cut_utf8'))?.returnPayload ?? '';
    expect(recorded.startsWith(big.slice(0, 100))).toBe(true);
    expect(recorded).not.toContain('\ufffd');
  });

  it("cuts returnPayload at 1 MiB of the answer's bytes, on a whole character, whatever its script or kind", async () => {
    const answers: Record<string, [string, string | Buffer]> = {
      // 900,000 bytes of PNG: kept whole (base64 of 1 MiB of characters once kept 786,432 bytes).
      png: ['image/png', Buffer.alloc(900_000, 7)],
      // 2 MiB of four-byte characters after one byte: cut within one (a lone surrogate was kept).
      emoji: ['text/plain; charset=utf-8', `a${'😀'.repeat(524_288)}`],
      // 1 MiB of three-byte characters: 3 MiB of bytes (kept whole when cut by characters).
      cjk: ['text/plain; charset=utf-8', '任'.repeat(1024 * 1024)],
    };
    const app: typeof ok = (req, res) => {
      const [type, body] = answers[(req.url ?? '').slice(1)] ?? ['text/plain', ''];
      res.setHeader('content-type', type);
      res.end(body);
    };
    const { handler } = setup(app);
    for (const id of Object.keys(answers)) await handler(asyncEvent({ taskId: id, path: `/${id}` }), context);
    await handler.drain();
    const kept = async (id: string) => (await handler.tasks.get(id))?.returnPayload ?? '';
    expect(Buffer.from(await kept('png'), 'base64')).toEqual(answers.png?.[1]);
    const emoji = await kept('emoji');
    expect([
      Buffer.from(emoji, 'utf8').toString('utf8') === emoji,
      Buffer.byteLength(emoji) <= 1024 * 1024,
      emoji.startsWith('a😀😀'),
    ]).toEqual([true, true, true]);
    expect(Buffer.byteLength(await kept('cjk'))).toBe(1024 * 1024 - 1);
  });

  it('retention keeps at most maxBytes of bodies and answers in finished tasks, oldest finished first', async () => {
    // Each task: a 1000-byte body and a 2000-byte answer; 7000 bytes hold two of them.
    const answer: typeof ok = (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end('a'.repeat(2000));
    };
    const { handler } = setup(answer, { backend: memory({ maxBytes: 7000 }) });
    for (let i = 0; i < 4; i++) {
      await handler(asyncEvent({ taskId: `t${i}`, method: 'POST', body: 'b'.repeat(1000) }), context);
      await handler.drain();
    }
    const ids = (await handler.tasks.list({ sortOrderByTime: 'asc' })).tasks.map((t) => t.taskId);
    expect(ids).toEqual(['t2', 't3']);
    // A bound below zero is refused.
    expect(() => memory({ maxBytes: -1 })).toThrow(/maxBytes/);
  });

  it('counts an answer in other scripts by its UTF-8 bytes against maxBytes, not by its characters', async () => {
    // 1000 three-byte characters an answer, 3000 bytes: 7000 bytes hold two (by characters, seven).
    const answer: typeof ok = (_req, res) => {
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('任'.repeat(1000));
    };
    const { handler } = setup(answer, { backend: memory({ maxBytes: 7000 }) });
    for (let i = 0; i < 5; i++) {
      await handler(asyncEvent({ taskId: `c${i}` }), context);
      await handler.drain();
    }
    const ids = (await handler.tasks.list({ sortOrderByTime: 'asc' })).tasks.map((t) => t.taskId);
    expect(ids).toEqual(['c3', 'c4']);
  });

  it('secrets never reach task records, destination records or logs', async () => {
    const secrets = ['AKID-LEAK', 'SK-LEAK', 'STS-LEAK', 'Bearer LEAK', 'session=LEAK', 'PROXY-LEAK', 'X-KEY-LEAK'];
    const { handler, failures, logger } = setup(
      () => {
        throw new Error('fails');
      },
      { maxAsyncRetryAttempts: 1 },
      { redactHeaders: ['X-Api-Key'] },
    );
    await handler(
      asyncEvent({
        taskId: 'secret',
        headers: {
          'X-Fc-Access-Key-Id': 'AKID-LEAK',
          'X-Fc-Access-Key-Secret': 'SK-LEAK',
          'X-Fc-Security-Token': 'STS-LEAK',
          Authorization: 'Bearer LEAK',
          Cookie: 'session=LEAK',
          'Proxy-Authorization': 'PROXY-LEAK',
          'X-Api-Key': 'X-KEY-LEAK',
          'X-Visible': 'fine',
        },
      }),
      context,
    );
    await handler.drain();
    const everything = JSON.stringify({
      task: await handler.tasks.get('secret'),
      list: await handler.tasks.list({ includePayload: true }),
      failures,
      logs: logger.entries,
    });
    for (const s of secrets) expect(everything).not.toContain(s);
    expect(everything).toContain('fine');
  });
});

describe('options', () => {
  it.each([
    [{ concurrency: 0 }, 'Expected `async.concurrency` to be an integer from 1 to 10000, got `0` (number)'],
    [
      { maxAsyncRetryAttempts: 9 },
      'Expected `async.maxAsyncRetryAttempts` to be an integer from 0 to 8, got `9` (number)',
    ],
    [{ maxAsyncEventAgeInSeconds: 0 }, 'Expected `async.maxAsyncEventAgeInSeconds` to be an integer from 1 to 604800'],
    [{ mode: 'cloud' }, "Expected `async.mode` to be 'auto', 'local' or 'platform', got `cloud`"],
    [{ timeoutSeconds: -1 }, 'Expected `async.timeoutSeconds` to be a number above 0'],
    [
      { backoff: { baseMs: 10, maxMs: 5 } },
      'Expected `async.backoff.maxMs` (5) to be at least `async.backoff.baseMs` (10)',
    ],
    [{ isFailure: 'yes' }, 'Expected `async.isFailure` to be a function'],
    [{ concurency: 3 }, 'Unknown option `async.concurency`'],
    [{ backoff: { base: 5 } }, 'Unknown option `async.backoff.base`'],
    [{ backoff: { maxMS: 5, jiter: 'none' } }, 'Unknown option `async.backoff.maxMS`'],
    [{ backoff: 'fast' }, 'Expected `async.backoff` to be an object, got `fast`'],
  ])('%j fails at createHandler time', (async, message) => {
    expect(() => createFcHandler(ok, { async: async as AsyncOptions, env: {} })).toThrow(message);
  });

  it('does not write defaults back into the caller object', () => {
    const async: AsyncOptions = { concurrency: 2 };
    createFcHandler(ok, { async, env: {} });
    expect(async).toEqual({ concurrency: 2 });
  });

  it('auto mode is platform on FC, local elsewhere', () => {
    expect(createFcHandler(ok, { env: { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' } }).mode).toBe('platform');
    expect(createFcHandler(ok, { env: { FC_FUNCTION_NAME: 'f' } }).mode).toBe('local');
    expect(createFcHandler(ok, { env: {}, async: { mode: 'platform' } }).mode).toBe('platform');
  });
});

describe('sync invocations are untouched by the engine', () => {
  it('runs inline with type Sync', async () => {
    let seen: Invocation | undefined;
    const { handler } = setup((req, res) => {
      seen = getInvocation(req);
      ok(req, res);
    });
    const result = await handler(event(), context);
    expect(result.statusCode).toBe(200);
    expect(seen?.type).toBe('Sync');
    expect((await handler.tasks.list()).tasks).toHaveLength(0);
  });
});

describe('a backend that fails to start', () => {
  it('answers 503 BackendUnavailable, and close() still resolves', async () => {
    const broken = {
      name: 'broken',
      persistent: false,
      create: async () => {
        throw new Error('connection refused');
      },
    };
    const { handler, logger } = setup(ok, { backend: broken });
    const result = await handler(asyncEvent(), context);
    expect(result.statusCode).toBe(503);
    expect(json(result)).toMatchObject({ code: 'BackendUnavailable' });
    expect(result.headers['retry-after']).toBe('1'); // a later request tries the backend again
    await expect(handler.tasks.list()).rejects.toMatchObject({ code: 'BackendUnavailable' });
    await expect(handler.close({ timeoutMs: 100 })).resolves.toBeUndefined();
    expect(logger.entries.some((e) => e.level === 'error' && e.message === 'async backend failed to start')).toBe(true);
  });
});

describe('a job that comes before its task is due', () => {
  /** A shared queue (BullMQ's place) that hands each job to the engine at once, whatever its delay. */
  function eagerQueue() {
    const queued: { taskId: string; delayMs: number }[] = [];
    let run: ((job: { taskId: string }) => Promise<unknown>) | undefined;
    const backend: AsyncBackend = {
      name: 'eager',
      persistent: true,
      create: () => ({
        store: new MemoryTaskStore(),
        queue: {
          shared: true,
          start(process) {
            run = process;
          },
          enqueue(job, delayMs) {
            queued.push({ taskId: job.taskId, delayMs });
          },
          cancel: () => false,
          pending: () => 0,
          running: () => 0,
          close() {},
        },
      }),
    };
    return { backend, queued, run: (taskId: string) => (run as NonNullable<typeof run>)({ taskId }) };
  }

  it('is sent back until the X-Fc-Async-Delay is over, and the app does not run', async () => {
    const queue = eagerQueue();
    const app = vi.fn(ok);
    const { handler } = setup(app, { backend: queue.backend });
    expect((await handler(asyncEvent({ taskId: 'later', delay: '30' }), context)).statusCode).toBe(202);
    expect(queue.queued).toEqual([{ taskId: 'later', delayMs: 30_000 }]);
    const result = (await queue.run('later')) as { retryInMs: number };
    expect(result.retryInMs).toBeGreaterThan(29_000);
    expect(result.retryInMs).toBeLessThanOrEqual(30_000);
    expect(app).not.toHaveBeenCalled();
    expect(statuses(await handler.tasks.get('later'))).toEqual(['Enqueued']);
    await handler.close({ timeoutMs: 100 });
  });

  it('is sent back until the backoff of a retry is over', async () => {
    const queue = eagerQueue();
    const app = vi.fn((_req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = 500;
      res.end();
    });
    const { handler } = setup(app, { backend: queue.backend, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    expect((await handler(asyncEvent({ taskId: 'flaky' }), context)).statusCode).toBe(202);
    const first = (await queue.run('flaky')) as { retryInMs: number };
    expect(first.retryInMs).toBeGreaterThan(1000);
    const second = (await queue.run('flaky')) as { retryInMs: number };
    expect(second.retryInMs).toBeLessThanOrEqual(first.retryInMs);
    expect(second.retryInMs).toBeGreaterThan(first.retryInMs - 1000);
    expect(app).toHaveBeenCalledTimes(1);
    expect(statuses(await handler.tasks.get('flaky'))).toEqual(['Enqueued', 'Dequeued', 'Running', 'Retrying']);
    await handler.close({ timeoutMs: 100 });
  });
});

describe('an attempt whose end the store refused to record', () => {
  /** memory(), with the first `times` writes of each listed status refused (a full disk, Redis away). */
  function refusing(times: number, ...statuses: string[]): AsyncBackend {
    const inner = memory();
    return {
      name: 'refusing',
      persistent: false,
      async create(deps) {
        const backend = await inner.create(deps);
        const refused = new Map<string, number>();
        const transition = backend.store.transition.bind(backend.store);
        backend.store.transition = (taskId, status, options) => {
          const key = `${taskId} ${status}`;
          if (statuses.includes(status) && (refused.get(key) ?? 0) < times) {
            refused.set(key, (refused.get(key) ?? 0) + 1);
            return Promise.reject(new Error('store unavailable'));
          }
          return transition(taskId, status, options);
        };
        return backend;
      },
    };
  }

  it('is recorded as it ended once the store takes writes again: the app does not run again', async () => {
    let runs = 0;
    const { handler, successes, failures } = setup(
      (req, res) => {
        runs++;
        ok(req, res);
      },
      { backend: refusing(1, 'Succeeded'), maxAsyncRetryAttempts: 0 },
    );
    await handler.engine?.whenReady();
    const attempts: string[] = [];
    handler.engine?.subscribe((e) => {
      if (e.type === 'attempt') attempts.push(`${e.attempt} ${e.outcome} ${e.status}`);
    });
    expect((await handler(asyncEvent({ taskId: 'unwritten' }), context)).statusCode).toBe(202);
    await vi.waitFor(async () => expect((await handler.tasks.get('unwritten'))?.status).toBe('Succeeded'), {
      timeout: 5000,
    });
    // Its attempt line is told once, when it is recorded (the emulator's log and the dashboard).
    await vi.waitFor(() => expect(attempts).toEqual(['0 success Succeeded']));
    expect(runs).toBe(1);
    expect(failures).toHaveLength(0);
    expect(successes.map((r) => [r.requestContext.condition, r.responsePayload])).toEqual([['', '{"ok":true}']]);
    expect((await handler.tasks.get('unwritten'))?.alreadyRetriedTimes).toBe(0);
  });

  it('is kept through a second refusal, and recorded when the store takes the write at last', async () => {
    let runs = 0;
    const { handler, successes, failures } = setup(
      (req, res) => {
        runs++;
        ok(req, res);
      },
      { backend: refusing(3, 'Succeeded'), maxAsyncRetryAttempts: 0 },
    );
    expect((await handler(asyncEvent({ taskId: 'refused_thrice' }), context)).statusCode).toBe(202);
    await vi.waitFor(async () => expect((await handler.tasks.get('refused_thrice'))?.status).toBe('Succeeded'), {
      timeout: 8000,
    });
    expect([runs, successes.length, failures.length]).toEqual([1, 1, 0]);
  });

  it("an app's own error named Interrupted is a throw (502), not a crash's cut attempt (0)", async () => {
    const { handler, failures } = setup(
      () => {
        throw Object.assign(new Error('upstream interrupted'), { name: 'Interrupted' });
      },
      { maxAsyncRetryAttempts: 0 },
    );
    expect((await handler(asyncEvent({ taskId: 'named_interrupted' }), context)).statusCode).toBe(202);
    await vi.waitFor(() => expect(failures).toHaveLength(1), { timeout: 5000 });
    expect(failures[0]?.responseContext.statusCode).toBe(502);
  });

  it('a failed attempt is recorded as the failure it was, and the retry policy decides', async () => {
    let runs = 0;
    const { handler, failures } = setup(
      (_req, res) => {
        runs++;
        res.statusCode = 500;
        res.end('down');
      },
      { backend: refusing(1, 'Failed'), maxAsyncRetryAttempts: 0 },
    );
    expect((await handler(asyncEvent({ taskId: 'failed_unwritten' }), context)).statusCode).toBe(202);
    await vi.waitFor(() => expect(failures).toHaveLength(1), { timeout: 5000 });
    expect(runs).toBe(1);
    expect(failures[0]?.responseContext).toEqual({ statusCode: 500, functionError: 'UnhandledInvocationError' });
  });
});

describe('a task gone from the store while its attempt ran (Redis restarted empty)', () => {
  it('is told as Invalid with a warning, not as a stop that did not happen', async () => {
    let gone = false;
    const inner = memory();
    const vanishing: AsyncBackend = {
      name: 'vanishing',
      persistent: false,
      async create(deps) {
        const backend = await inner.create(deps);
        const { store } = backend;
        const transition = store.transition.bind(store);
        const get = store.get.bind(store);
        store.transition = (taskId, status, options) => (gone ? undefined : transition(taskId, status, options));
        store.get = (taskId) => (gone ? undefined : get(taskId));
        return backend;
      },
    };
    const { handler, successes, failures, logger } = setup(
      (req, res) => {
        gone = true;
        ok(req, res);
      },
      { backend: vanishing },
    );
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent({ taskId: 'first' }), context)).statusCode).toBe(202);
    // Said with nothing subscribed, and counted done: drain() (and close()) do not wait for it.
    await handler.drain();
    expect(logger.entries.filter((e) => e.level === 'warn').map((e) => e.message)).toContain(
      'the async task is gone from the store: its end is not recorded',
    );
    gone = false;
    const statuses: string[] = [];
    handler.engine?.subscribe((e) => {
      if (e.type === 'attempt') statuses.push(e.status);
    });
    expect((await handler(asyncEvent({ taskId: 'vanished' }), context)).statusCode).toBe(202);
    await vi.waitFor(() => expect(statuses).toEqual(['Invalid']), { timeout: 5000 });
    expect([successes, failures]).toEqual([[], []]);
  });
});
