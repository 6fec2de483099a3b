import type { IncomingHttpHeaders } from 'node:http';
import {
  type AsyncBackend,
  type DestinationRecord,
  type FcRuntimeOptions,
  type Invocation,
  memory,
  type TaskRecord,
} from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type AppSpec, type MiddlewareTarget, middlewareTargets, type Route, recordingLogger } from '../src/index.js';

const FC_HEADERS = {
  'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  'x-fc-function-name': 'transcode',
  'x-fc-region': 'cn-hangzhou',
  'x-fc-account-id': '123',
  'x-fc-function-memory': '512',
  'x-fc-access-key-id': 'AKID',
  'x-fc-access-key-secret': 'SECRET',
  'x-fc-security-token': 'TOKEN',
};
const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/**
 * The app, with `x-upstream: kept` set before `fcAsync`: `/job` fails its first `?fail=N`
 * attempts with 500, `/boom` throws, `/inv` echoes the invocation context.
 */
async function build(target: MiddlewareTarget, options: FcRuntimeOptions = {}, before: AppSpec['before'] = 'header') {
  const seen: { invocation: Invocation | undefined; body: unknown; headers: IncomingHttpHeaders }[] = [];
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const routes: Route[] = [
    {
      method: 'POST',
      path: '/job',
      handle: (req) => {
        seen.push({ invocation: req.fc, body: req.body, headers: req.headers });
        const attempt = req.fc?.attempt ?? 0;
        return { status: attempt < Number(req.query.fail ?? 0) ? 500 : 200, body: { attempt } };
      },
    },
    {
      method: 'POST',
      path: '/boom',
      handle: () => {
        throw new Error('boom');
      },
    },
    { method: 'GET', path: '/inv', handle: (req) => ({ body: { fc: req.fc, same: req.fc === req.invocation } }) },
  ];
  const built = await target.build({
    fcAsync: {
      logger: recordingLogger(),
      env: {},
      destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
      ...options,
      async: { backoff: { baseMs: 1, maxMs: 2 }, ...options.async },
    },
    routes,
    before,
  });
  const server = await built.serve();
  cleanup.push(server.close);
  const middleware = built.controls as NonNullable<typeof built.controls>;
  const post = (path: string, headers: Record<string, string> = {}, body = '{"v":1}') =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
  return { middleware, url: server.url, post, seen, successes, failures };
}

/**
 * memory(), made persistent and holding a task an earlier process accepted and never ran: what
 * sqlite() recovers at start, or bullmq() finds in Redis.
 */
function recovering(taskId: string): AsyncBackend {
  const inner = memory();
  return {
    name: 'recovering',
    persistent: true,
    async create(context) {
      const created = await inner.create(context);
      const now = Date.now();
      const record: TaskRecord = {
        taskId,
        requestId: taskId,
        status: 'Enqueued',
        functionArn: 'acs:fc:local:0:functions/fc-async-local',
        qualifier: 'LATEST',
        startedTime: now,
        alreadyRetriedTimes: 0,
        events: [{ eventId: 1, status: 'Enqueued', timestamp: now, eventDetail: '' }],
        payload: {
          method: 'POST',
          url: '/job',
          headers: { 'content-type': 'application/json' },
          body: Buffer.from('{"v":2}'),
        },
        acceptedAt: now,
        attempts: 0,
      };
      await created.store.insert(record);
      return created;
    },
  };
}

/** One turn of the event loop: what the queue needs to hand a queued job to its worker. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe.each(middlewareTargets)('$name fcAsync', (target) => {
  it('passes a sync request through, with the invocation read from FC headers and no credentials', async () => {
    const { url } = await build(target);
    const r = await fetch(`${url}/inv`, { headers: FC_HEADERS });
    const { fc, same } = (await r.json()) as { fc: unknown; same: boolean };
    expect(same).toBe(true);
    expect(fc).toMatchObject({
      type: 'Sync',
      requestId: FC_HEADERS['x-fc-request-id'],
      functionName: 'transcode',
      region: 'cn-hangzhou',
      accountId: '123',
      memoryMB: 512,
    });
    expect(JSON.stringify(fc)).not.toMatch(/AKID|SECRET|TOKEN/);
  });

  it('local mode: answers 202 with the ids and upstream headers, then the app runs the replay as Async', async () => {
    const { middleware, post, seen, successes } = await build(target);
    expect(middleware.mode).toBe('local');
    const r = await post('/job', { ...FC_HEADERS, 'x-fc-invocation-type': 'Async' });
    expect(r.status).toBe(202);
    // Without FC in front the request id is the middleware's to give, as FC gives its own.
    const requestId = r.headers.get('x-fc-request-id');
    expect(requestId).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(requestId).not.toBe(FC_HEADERS['x-fc-request-id']);
    expect(r.headers.get('x-fc-async-task-id')).toBe(requestId);
    expect(r.headers.get('x-upstream')).toBe('kept');
    await middleware.drain();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body).toEqual({ v: 1 });
    expect(seen[0]?.invocation).toMatchObject({ type: 'Async', attempt: 0, source: 'local-queue' });
    expect(successes[0]?.requestPayload).not.toMatch(/AKID|SECRET|TOKEN/);
  });

  it.each([
    ['local', {}],
    ['platform', { env: ON_FC }],
  ] as const)(
    '%s mode: answered in front, then passed on: the 503 stands, nothing queued or run',
    async (_mode, options) => {
      const { middleware, post, seen } = await build(target, options, 'answered');
      const r = await post('/job', { ...FC_HEADERS, 'x-fc-invocation-type': 'Async' });
      expect([r.status, await r.json()]).toEqual([503, { code: 'Busy' }]);
      await middleware.drain();
      if (middleware.mode === 'local') expect((await middleware.tasks.list()).tasks).toEqual([]);
      expect(seen).toEqual([]);
    },
  );

  it('retries failed attempts, then calls onFailure with FC’s record', async () => {
    const { middleware, post, seen, failures, successes } = await build(target, {
      async: { maxAsyncRetryAttempts: 2 },
    });
    await post('/job?fail=1', { 'x-fc-async-task-id': 'flaky' });
    await post('/job?fail=9', { 'x-fc-async-task-id': 'broken' });
    await middleware.drain();
    expect(seen.map((s) => `${s.invocation?.taskId}:${s.invocation?.attempt}`).sort()).toEqual([
      'broken:0',
      'broken:1',
      'broken:2',
      'flaky:0',
      'flaky:1',
    ]);
    expect(successes.map((r) => r.requestContext.approximateInvokeCount)).toEqual([2]);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      requestContext: { condition: 'UnhandledInvocationError', approximateInvokeCount: 3 },
      responseContext: { statusCode: 500 },
    });
    expect((await middleware.tasks.get('broken'))?.status).toBe('Failed');
  });

  it('answers refusals as JSON { code, message }: 409, 400, 429', async () => {
    const { post } = await build(target, { async: { maxQueuedTasks: 2, maxAsyncPayloadBytes: 64 } });
    const delayed = { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '60' };
    expect((await post('/job', { ...delayed, 'x-fc-async-task-id': 'once' })).status).toBe(202);
    const cases = [
      [await post('/job', { ...delayed, 'x-fc-async-task-id': 'once' }), 409, 'AsyncTaskAlreadyExists'],
      [await post('/job', { 'x-fc-invocation-type': 'Later' }), 400, 'InvalidArgument'],
      [await post('/job', { 'x-fc-invocation-type': 'Async' }, 'x'.repeat(100)), 400, 'InvalidArgument'],
      [await post('/job', delayed), 202, undefined],
      [await post('/job', delayed), 429, 'ResourceThrottled'],
    ] as const;
    for (const [response, status, code] of cases) {
      expect(response.status).toBe(status);
      if (code) expect(await response.json()).toEqual({ code, message: expect.any(String) });
    }
  });

  it('platform mode: destination hooks get FC’s record, x-fc-status 404 on a 5xx and a throw, none on success', async () => {
    const { middleware, post, successes, failures } = await build(target, {
      env: ON_FC,
      async: { maxAsyncRetryAttempts: 1 },
    });
    expect(middleware.mode).toBe('platform');
    const onFc = (retry: number) => ({
      ...FC_HEADERS,
      'x-fc-async-task-id': 'job_7',
      'x-fc-retry-count': String(retry),
    });
    const ok = await post('/job', onFc(0));
    expect([ok.status, ok.headers.get('x-fc-status')]).toEqual([200, null]);
    expect(successes[0]).toMatchObject({
      requestContext: {
        requestId: FC_HEADERS['x-fc-request-id'],
        functionArn: 'acs:fc:cn-hangzhou:123:functions/transcode',
        condition: '',
        approximateInvokeCount: 1,
      },
      responseContext: { statusCode: 200, functionError: '' },
      responsePayload: '{"attempt":0}',
    });
    expect(successes[0]?.requestPayload).not.toMatch(/AKID|SECRET|TOKEN/);

    const early = await post('/job?fail=9', onFc(0));
    expect([early.status, early.headers.get('x-fc-status')]).toEqual([500, '404']);
    expect(failures).toHaveLength(0);
    const last = await post('/job?fail=9', onFc(1));
    expect([last.status, last.headers.get('x-fc-status')]).toEqual([500, '404']);
    const thrown = await post('/boom', onFc(1));
    expect([thrown.status, thrown.headers.get('x-fc-status')]).toEqual([500, '404']);
    // A thrown error's message stays in the log: the record has the status line, as createHandler's.
    expect(failures.map((f) => JSON.parse(f.responsePayload).errorMessage)).toEqual([
      'The function answered HTTP 500',
      'The function answered HTTP 500',
    ]);
    const sync = await post('/job?fail=9', FC_HEADERS);
    expect([sync.status, sync.headers.get('x-fc-status')]).toEqual([500, null]);
  });

  it('a route that throws: a generic 500 without its message or a stack, the error to fcAsync’s logger', async () => {
    const logger = recordingLogger();
    const built = await target.build({
      fcAsync: { logger, env: {} },
      routes: [
        {
          method: 'POST',
          path: '/fail',
          handle: () => {
            throw new Error('boom secret-detail');
          },
        },
      ],
    });
    const server = await built.serve();
    cleanup.push(server.close);
    const r = await fetch(`${server.url}/fail`, { method: 'POST' });
    const body = await r.text();
    expect(r.status).toBe(500);
    expect(body).not.toContain('secret-detail');
    expect(body).not.toMatch(/\n\s+at /);
    const errors = logger.entries.filter((e) => e.level === 'error').map((e) => e.fields?.error);
    expect(errors).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
  });

  it('reports a body parser installed before it instead of queueing an empty body', async () => {
    const { post, seen } = await build(target, {}, 'body-parser');
    const r = await post('/job', { 'x-fc-invocation-type': 'Async' }, '{}');
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ code: 'BodyAlreadyRead' });
    expect(seen).toHaveLength(0);
  });

  it('behind an auth check in front: refuses an unauthenticated async call, replays an accepted one without credentials', async () => {
    const { middleware, post, seen } = await build(target, {}, 'auth');
    const denied = await post('/job', { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'denied' });
    expect(denied.status).toBe(401);
    const accepted = await post('/job', {
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': 'allowed',
      authorization: 'Bearer ok',
      cookie: 'sid=1',
    });
    expect(accepted.status).toBe(202);
    await middleware.drain();
    expect(await middleware.tasks.get('denied')).toBeUndefined();
    expect((await middleware.tasks.get('allowed'))?.status).toBe('Succeeded');
    // The check let the replay through (isMiddlewareReplay): it carries neither credentials nor cookies.
    expect(seen).toHaveLength(1);
    expect(seen[0]?.invocation).toMatchObject({ type: 'Async', source: 'local-queue', taskId: 'allowed' });
    expect(seen[0]?.headers).not.toHaveProperty('authorization');
    expect(seen[0]?.headers).not.toHaveProperty('cookie');
  });

  it('starts a task a persistent backend recovers only once it knows the app, then runs it once', async () => {
    const seen: (Invocation | undefined)[] = [];
    const built = await target.build({
      fcAsync: { logger: recordingLogger(), env: {}, async: { backend: recovering('recovered'), timeoutSeconds: 1 } },
      routes: [
        {
          method: 'POST',
          path: '/job',
          handle: (req) => {
            seen.push(req.fc);
            return { body: { got: req.body } };
          },
        },
        { method: 'GET', path: '/ping', handle: () => ({ body: 'pong' }) },
      ],
    });
    const controls = built.controls as NonNullable<typeof built.controls>;
    await controls.engine?.whenReady();
    for (let i = 0; i < 3; i++) await turn();
    // No attempt, and so no attempt timeout, before the app is known (Express and Koa: the first
    // request; Fastify: the app is ready).
    expect((await controls.tasks.get('recovered'))?.status).toBe('Enqueued');
    const server = await built.serve();
    cleanup.push(server.close);
    expect((await fetch(`${server.url}/ping`)).status).toBe(200);
    await controls.drain();
    expect(await controls.tasks.get('recovered')).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
    expect(seen.map((inv) => `${inv?.type}:${inv?.attempt}`)).toEqual(['Async:0']);
  });
});
