import type { DestinationRecord } from '@fc-async/core';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { fcAsync, listen } from '../src/index.js';
import { logger } from './event.js';

const FC_HEADERS = { 'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9', 'x-fc-function-name': 'transcode' };
const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/** A custom runtime whose route reports its failure to FC itself: `x-fc-status: 404` on a 200. */
async function serve(env: Record<string, string>) {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const middleware = fcAsync({
    logger: logger(),
    env,
    async: { maxAsyncRetryAttempts: 1, backoff: { baseMs: 1, maxMs: 2 } },
    destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
  });
  const app = express();
  app.use(middleware);
  app.post('/job', (_req, res) => {
    res.set('x-fc-status', '404').json({ done: false });
  });
  const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
  cleanup.push(() => server.close());
  const post = (headers: Record<string, string>) =>
    fetch(`http://127.0.0.1:${server.port}/job`, { method: 'POST', headers });
  return { middleware, post, successes, failures };
}

describe('an async call the app answers with x-fc-status: 404 itself (FC counts it failed)', () => {
  it('platform mode: onFailure on FC’s last attempt, never onSuccess', async () => {
    const { post, successes, failures } = await serve(ON_FC);
    const headers = (retry: number) => ({
      ...FC_HEADERS,
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': 'marked',
      'x-fc-retry-count': String(retry),
    });
    for (const retry of [0, 1]) {
      const r = await post(headers(retry));
      expect([r.status, r.headers.get('x-fc-status')]).toEqual([200, '404']);
    }
    // Before: onSuccess at each of FC's attempts, for an invocation FC retried and counted failed.
    expect(successes).toHaveLength(0);
    expect(failures.map((f) => [f.requestContext.condition, f.responseContext.statusCode])).toEqual([
      ['UnhandledInvocationError', 200],
    ]);
    expect(JSON.parse(failures[0]?.responsePayload ?? '{}')).toEqual({
      errorMessage: 'The function answered HTTP 200 with x-fc-status: 404',
      errorType: 'HTTP200',
    });
  });

  it('local mode: the task is retried and ends Failed, as on FC', async () => {
    const { middleware, post, successes, failures } = await serve({});
    const r = await post({ 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'marked' });
    expect(r.status).toBe(202);
    await middleware.drain();
    expect(await middleware.tasks.get('marked')).toMatchObject({
      status: 'Failed',
      alreadyRetriedTimes: 1,
      taskErrorMessage: 'The function answered HTTP 200 with x-fc-status: 404',
    });
    expect(successes).toHaveLength(0);
    expect(failures).toHaveLength(1);
  });
});
