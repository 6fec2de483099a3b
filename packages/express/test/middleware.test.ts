import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DestinationRecord, Invocation } from '@fc-async/core';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { type FcAsyncMiddleware, type FcRuntimeOptions, fcAsync, getInvocation } from '../src/index.js';
import { logger } from './event.js';

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

/** The app: `/job` fails its first `?fail=N` attempts with 500, `/boom` throws, `/inv` echoes the context. */
async function build(options: FcRuntimeOptions = {}, mount?: string) {
  const seen: { invocation: Invocation | undefined; body: unknown }[] = [];
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const middleware: FcAsyncMiddleware = fcAsync({
    logger: logger(),
    env: {},
    destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
    ...options,
    async: { backoff: { baseMs: 1, maxMs: 2 }, ...options.async },
  });
  const inner = express();
  inner.use(middleware);
  inner.post('/job', express.json(), (req, res) => {
    seen.push({ invocation: req.fc, body: req.body });
    const attempt = req.fc?.attempt ?? 0;
    res.status(attempt < Number(req.query.fail ?? 0) ? 500 : 200).json({ attempt });
  });
  inner.post('/boom', () => {
    throw new Error('boom');
  });
  inner.get('/inv', (req, res) => res.json({ fc: req.fc, same: req.fc === getInvocation(req) }));
  const app = mount ? express().use(mount, inner) : inner;
  const server: Server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(async () => {
    await middleware.close({ timeoutMs: 50 });
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${mount ?? ''}`;
  const post = (path: string, headers: Record<string, string> = {}, body = '{"v":1}') =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { middleware, url, post, seen, successes, failures };
}

describe('express fcAsync() middleware', () => {
  it('passes a sync request through, with the invocation read from FC headers and no credentials', async () => {
    const { url } = await build();
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

  it('local mode: answers 202 with the ids, then the app runs the replay as Async', async () => {
    const { middleware, post, seen, successes } = await build();
    expect(middleware.mode).toBe('local');
    const r = await post('/job', { ...FC_HEADERS, 'x-fc-invocation-type': 'Async' });
    expect(r.status).toBe(202);
    expect(r.headers.get('x-fc-request-id')).toBe(FC_HEADERS['x-fc-request-id']);
    expect(r.headers.get('x-fc-async-task-id')).toBe(FC_HEADERS['x-fc-request-id']);
    await middleware.drain();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body).toEqual({ v: 1 });
    expect(seen[0]?.invocation).toMatchObject({ type: 'Async', attempt: 0, source: 'local-queue' });
    expect(successes[0]?.requestPayload).not.toMatch(/AKID|SECRET|TOKEN/);
  });

  it('retries failed attempts, then calls onFailure with FC’s record', async () => {
    const { middleware, post, seen, failures, successes } = await build({ async: { maxAsyncRetryAttempts: 2 } });
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
    const { post } = await build({ async: { maxQueuedTasks: 2, maxAsyncPayloadBytes: 64 } });
    const delayed = { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '60' };
    expect((await post('/job', { ...delayed, 'x-fc-async-task-id': 'once' })).status).toBe(202);
    const cases = [
      [await post('/job', { ...delayed, 'x-fc-async-task-id': 'once' }), 409, 'AsyncTaskAlreadyExists'],
      [await post('/job', { 'x-fc-invocation-type': 'Later' }), 400, 'InvalidArgument'],
      [await post('/job', { 'x-fc-invocation-type': 'Async' }, 'x'.repeat(100)), 400, 'EntityTooLarge'],
      [await post('/job', delayed), 202, undefined],
      [await post('/job', delayed), 429, 'ResourceThrottled'],
    ] as const;
    for (const [response, status, code] of cases) {
      expect(response.status).toBe(status);
      if (code) expect(await response.json()).toEqual({ code, message: expect.any(String) });
    }
  });

  it('platform mode: destination hooks get FC’s record, x-fc-status 404 on a 5xx and a throw, none on success', async () => {
    const { middleware, post, successes, failures } = await build({
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
    expect(failures.map((f) => JSON.parse(f.responsePayload).errorMessage)).toEqual([
      'The function answered HTTP 500',
      'boom',
    ]);
    const sync = await post('/job?fail=9', FC_HEADERS);
    expect([sync.status, sync.headers.get('x-fc-status')]).toEqual([500, null]);
  });

  it('in a sub-app mounted at a path, replays the original URL through the whole app', async () => {
    const { middleware, post, seen } = await build({}, '/api');
    expect((await post('/job', { 'x-fc-invocation-type': 'Async' })).status).toBe(202);
    await middleware.drain();
    expect(seen.map((s) => s.invocation?.type)).toEqual(['Async']);
  });

  it('reports a body parser installed before it instead of queueing an empty body', async () => {
    const app = express();
    const middleware = fcAsync({ logger: logger(), env: {} });
    app.use(express.json(), middleware);
    const server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
      body: '{}',
    });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ code: 'BodyAlreadyRead' });
  });
});
