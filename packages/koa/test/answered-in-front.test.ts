import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { fcAsync, listen } from '../src/index.js';

// A middleware in front of fcAsync() that answers on `ctx.res` (an Express middleware through
// koa-connect, connect-timeout), then calls next() all the same: only a 202 accepts an async call.
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

/** `front` first, then fcAsync(), then a route that counts its runs; served by `listen()`. */
async function serve(front: Koa.Middleware, env: Record<string, string> = {}) {
  const log = recordingLogger();
  const app = new Koa();
  const runs: unknown[] = [];
  app.use(front);
  const middleware = fcAsync({ logger: log, env, async: { maxAsyncRetryAttempts: 0 } });
  app.use(middleware);
  app.use((ctx) => {
    runs.push(ctx.fc?.source);
    ctx.body = { ran: true };
  });
  const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: log, env });
  cleanup.push(() => server.close());
  const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': REQUEST_ID, authorization: 'Bearer s3cret' };
  const post = () => fetch(`http://127.0.0.1:${server.port}/job`, { method: 'POST', headers, body: '{}' });
  return { log, middleware, runs, post };
}

/** Answers 401 on the Node response itself, then passes the request on. */
const answerThenNext: Koa.Middleware = async (ctx, next) => {
  ctx.res.statusCode = 401;
  ctx.res.setHeader('content-type', 'application/json');
  ctx.res.end('{"code":"Unauthorized"}');
  await next();
};

describe('koa fcAsync() after a middleware in front already answered', () => {
  it('local mode: the caller keeps the 401, nothing is queued, the route never runs, one warn line', async () => {
    const { log, middleware, runs, post } = await serve(answerThenNext);
    const r = await post();
    expect([r.status, await r.json()]).toEqual([401, { code: 'Unauthorized' }]);
    await middleware.drain();
    expect((await middleware.tasks.list()).tasks).toEqual([]);
    expect(runs).toEqual([]);
    expect(log.warns).toEqual([
      {
        message: expect.stringContaining('already answered'),
        fields: { requestId: expect.stringMatching(/^1-/), statusCode: 401 },
      },
    ]);
    expect(JSON.stringify(log.warns)).not.toContain('s3cret');
    expect(log.errors).toEqual([]);
  });

  it('platform mode: the route never runs (no collecting run), one warn line naming the request id', async () => {
    const { log, middleware, runs, post } = await serve(answerThenNext, ON_FC);
    const r = await post();
    expect([r.status, r.headers.get('x-fc-status'), await r.json()]).toEqual([401, null, { code: 'Unauthorized' }]);
    await middleware.drain();
    expect(runs).toEqual([]);
    expect(log.warns).toEqual([
      { message: expect.stringContaining('already answered'), fields: { requestId: REQUEST_ID, statusCode: 401 } },
    ]);
    expect(log.errors).toEqual([]);
  });

  it('platform mode: a 5xx answered in front is still marked x-fc-status 404, and the route never runs', async () => {
    const { middleware, runs, post } = await serve(async (ctx, next) => {
      ctx.res.statusCode = 503;
      ctx.res.end();
      await next();
    }, ON_FC);
    const r = await post();
    expect([r.status, r.headers.get('x-fc-status')]).toEqual([503, '404']);
    await middleware.drain();
    expect(runs).toEqual([]);
  });

  it('ctx.status and ctx.body set in front, then next(): not answered in Koa (sent after the chain), so the 202 stands', async () => {
    const { middleware, runs, post } = await serve(async (ctx, next) => {
      ctx.status = 401;
      ctx.body = { code: 'Unauthorized' };
      await next();
    });
    const r = await post();
    expect(r.status).toBe(202);
    await middleware.drain();
    expect((await middleware.tasks.list()).tasks.map((t) => t.status)).toEqual(['Succeeded']);
    expect(runs).toEqual(['local-queue']);
  });
});
