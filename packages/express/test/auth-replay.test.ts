import { getInvocation } from '@fc-async/core';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler, fcAsync, isMiddlewareReplay, listen } from '../src/index.js';
import { event, logger } from './event.js';

// docs/deploy.md's Authentication pattern: check callers in front of fcAsync(), let its replays through.
const ON_FC = { FC_FUNCTION_NAME: 'admin', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/** The documented app: a bearer check in front of fcAsync(), a route that must never run anonymously. */
function guardedApp(env: Record<string, string>) {
  const ran: { authorization: string | undefined; source: string | undefined }[] = [];
  const replays: boolean[] = [];
  const app = express();
  app.use((req, res, next) => {
    replays.push(isMiddlewareReplay(req));
    if (isMiddlewareReplay(req)) return next();
    if (req.headers.authorization !== 'Bearer good') return res.status(401).json({ code: 'Unauthorized' });
    next();
  });
  const middleware = fcAsync({ logger: logger(), env, async: { backoff: { baseMs: 1, maxMs: 2 } } });
  app.use(middleware);
  app.post('/admin/delete', (req, res) => {
    ran.push({ authorization: req.headers.authorization, source: getInvocation(req)?.source });
    res.json({ deleted: true });
  });
  return { app, middleware, ran, replays };
}

describe('isMiddlewareReplay: the Authentication pattern of docs/deploy.md', () => {
  it('createHandler(app): an anonymous async call never runs the protected route (its attempt is answered 401)', async () => {
    const { app, ran } = guardedApp({});
    const handler = createHandler(app, { logger: logger(), env: {}, async: { mode: 'local' } });
    cleanup.push(() => handler.close({ timeoutMs: 50 }));
    const asyncCall = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'anon' };
    expect((await handler(event('POST', '/admin/delete', '', asyncCall), {})).statusCode).toBe(202);
    await handler.drain();
    expect(ran).toEqual([]);
    expect(JSON.parse((await handler.tasks.get('anon'))?.returnPayload ?? '{}')).toEqual({ code: 'Unauthorized' });
    // A caller's credentials are never replayed either: an authenticated async call gets 401 as well.
    const signed = { ...asyncCall, 'x-fc-async-task-id': 'signed', authorization: 'Bearer good' };
    await handler(event('POST', '/admin/delete', '', signed), {});
    await handler.drain();
    expect(ran).toEqual([]);
  });

  it('a header cannot make a request a replay', async () => {
    const { app, ran, middleware } = guardedApp({});
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger(), env: {} });
    cleanup.push(() => server.close());
    const forged = {
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': 'forged',
      'x-fc-retry-count': '1',
      'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9',
    };
    const r = await fetch(`http://127.0.0.1:${server.port}/admin/delete`, { method: 'POST', headers: forged });
    expect(r.status).toBe(401);
    await middleware.drain();
    expect(ran).toEqual([]);
  });

  it('the middleware path (local mode): an authenticated async call runs once, its replay let through; an anonymous one is refused before it is queued', async () => {
    const { app, ran, replays, middleware } = guardedApp({});
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger(), env: {} });
    cleanup.push(() => server.close());
    const url = `http://127.0.0.1:${server.port}/admin/delete`;
    const anonymous = await fetch(url, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(anonymous.status).toBe(401);
    const headers = { 'x-fc-invocation-type': 'Async', authorization: 'Bearer good' };
    const accepted = await fetch(url, { method: 'POST', headers });
    expect(accepted.status).toBe(202);
    await middleware.drain();
    expect(ran).toEqual([{ authorization: undefined, source: 'local-queue' }]);
    expect(replays).toEqual([false, false, true]);
  });

  it('the middleware path on FC (platform mode): its collecting run is a replay of the request checked as it arrived', async () => {
    const { app, ran, replays } = guardedApp(ON_FC);
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger(), env: ON_FC });
    cleanup.push(() => server.close());
    const url = `http://127.0.0.1:${server.port}/admin/delete`;
    const asyncCall = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'fc1' };
    expect((await fetch(url, { method: 'POST', headers: asyncCall })).status).toBe(401);
    const r = await fetch(url, { method: 'POST', headers: { ...asyncCall, authorization: 'Bearer good' } });
    expect(r.status).toBe(200);
    expect(ran).toHaveLength(1);
    expect(replays).toEqual([false, false, true]);
  });
});
