import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { fcAsync, getInvocation, listen } from '../src/index.js';

// A middleware in front of fcAsync() that answers, then calls next() all the same (connect-timeout,
// a logger or a check that answers and passes on): only a 202 accepts an async call (FC's rule).
const REQUEST_ID = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

function recordingLogger() {
  const warns: { message: string; fields: Record<string, unknown> | undefined }[] = [];
  const errors: unknown[] = [];
  return {
    warns,
    errors,
    debug() {},
    info() {},
    warn: (message: string, fields?: Record<string, unknown>) => void warns.push({ message, fields }),
    error: (_m: string, fields?: Record<string, unknown>) => void errors.push(fields?.error),
  };
}

/** `front` first, then fcAsync(), then `POST /job`, which counts its runs; served by `listen()`. */
async function serve(front: express.RequestHandler, env: Record<string, string> = {}) {
  const log = recordingLogger();
  const app = express();
  const runs: unknown[] = [];
  app.use(front);
  const middleware = fcAsync({ logger: log, env, async: { maxAsyncRetryAttempts: 0 } });
  app.use(middleware);
  app.post('/job', (req, res) => {
    runs.push(req.fc?.source);
    if (!res.headersSent) res.json({ ran: true });
    else res.end(' route');
  });
  const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: log, env });
  cleanup.push(() => server.close());
  const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': REQUEST_ID, authorization: 'Bearer s3cret' };
  const post = () => fetch(`http://127.0.0.1:${server.port}/job`, { method: 'POST', headers, body: '{}' });
  return { log, middleware, runs, post };
}

describe('express fcAsync() after a middleware in front already answered', () => {
  const answerThenNext: express.RequestHandler = (_req, res, next) => {
    res.status(503).json({ code: 'Busy' });
    next();
  };

  it('local mode: the caller keeps the 503, nothing is queued, the route never runs, one warn line', async () => {
    const { log, middleware, runs, post } = await serve(answerThenNext);
    const r = await post();
    expect([r.status, await r.json()]).toEqual([503, { code: 'Busy' }]);
    await middleware.drain();
    expect((await middleware.tasks.list()).tasks).toEqual([]);
    expect(runs).toEqual([]);
    expect(log.warns).toEqual([
      {
        message: expect.stringContaining('already answered'),
        fields: { requestId: expect.stringMatching(/^1-/), statusCode: 503 },
      },
    ]);
    expect(JSON.stringify(log.warns)).not.toContain('s3cret');
    expect(log.errors).toEqual([]);
  });

  it('platform mode: the route never runs, and listen() still marks the 503 x-fc-status 404', async () => {
    const { log, middleware, runs, post } = await serve(answerThenNext, ON_FC);
    const r = await post();
    expect([r.status, r.headers.get('x-fc-status'), await r.json()]).toEqual([503, '404', { code: 'Busy' }]);
    await middleware.drain();
    expect(runs).toEqual([]);
    expect(log.warns).toEqual([
      { message: expect.stringContaining('already answered'), fields: { requestId: REQUEST_ID, statusCode: 503 } },
    ]);
    expect(log.errors).toEqual([]);
  });

  it('local mode: an attempt answered in front (a limiter counting replays) is that answer; the route does not run', async () => {
    const { middleware, runs, post } = await serve((req, res, next) => {
      if (getInvocation(req) !== undefined) res.status(429).json({ code: 'Limited' });
      next();
    });
    const r = await post();
    expect(r.status).toBe(202);
    const taskId = r.headers.get('x-fc-async-task-id') as string;
    await middleware.drain();
    const task = await middleware.tasks.get(taskId);
    expect([task?.status, task?.returnPayload]).toEqual(['Succeeded', '{"code":"Limited"}']);
    expect(runs).toEqual([]);
  });

  it('a response only begun in front (its head written) is not accepted either: the request goes on as a sync one', async () => {
    const { log, middleware, runs, post } = await serve((_req, res, next) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('head');
      next();
    });
    const r = await post();
    expect([r.status, await r.text()]).toEqual([200, 'head route']);
    await middleware.drain();
    expect((await middleware.tasks.list()).tasks).toEqual([]);
    expect(runs).toHaveLength(1);
    expect(log.warns).toEqual([{ message: expect.stringContaining('begun'), fields: expect.anything() }]);
  });
});
