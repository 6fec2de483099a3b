import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DestinationRecord, type Detector, detectInvocation } from '@fc-async/core';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler, fcAsync, listen } from '../src/index.js';
import { event, logger } from './event.js';

// The behaviour every framework shares runs in packages/test-kit (middleware, listen, tracing).
const FC_HEADERS = { 'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9', 'x-fc-function-name': 'transcode' };
const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

describe('express fcAsync() middleware, Express only', () => {
  it('in a sub-app mounted at a path, replays the original URL through the whole app', async () => {
    const seen: unknown[] = [];
    const middleware = fcAsync({ logger: logger(), env: {}, async: { backoff: { baseMs: 1, maxMs: 2 } } });
    const inner = express();
    inner.use(middleware);
    inner.post('/job', express.json(), (req, res) => {
      seen.push({ type: req.fc?.type, body: req.body });
      res.json({ ok: true });
    });
    const server = createServer(express().use('/api', inner));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      await middleware.close({ timeoutMs: 50 });
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/job`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
      body: '{"v":1}',
    });
    expect(r.status).toBe(202);
    await middleware.drain();
    expect(seen).toEqual([{ type: 'Async', body: { v: 1 } }]);
  });
});

describe('express fcAsync() outside an Express app', () => {
  it('answers 500 NotAnExpressApp in a plain http server (no next to pass it to), and the server lives on', async () => {
    const middleware = fcAsync({ logger: logger(), env: {} });
    const server = createServer((req, res) => middleware(req as never, res, undefined as never));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      await middleware.close({ timeoutMs: 50 });
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/job`;
    for (let i = 0; i < 2; i++) {
      const r = await fetch(url);
      expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([500, 'NotAnExpressApp']);
    }
  });
});

/** The stack frames Express's own final handler sends outside production (NODE_ENV is `test` here). */
const STACK = /\n\s+at /;

describe('express fcAsync() middleware: an app that throws', () => {
  /** An app served by `listen()`: fcAsync first, the routes, then `tail` (the app's error middleware). */
  async function serve(tail: (app: express.Express) => void = () => {}) {
    const log = logger();
    const app = express();
    app.use(fcAsync({ logger: log, env: {} }));
    app.post('/fail', () => {
      throw new Error('boom secret-detail');
    });
    app.post('/reject', async () => {
      throw new Error('boom secret-detail');
    });
    app.post('/json', express.json(), (_req, res) => res.end());
    tail(app);
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => server.close());
    const post = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${server.port}${path}`, { method: 'POST', ...init });
    return { log, post };
  }

  it.each(['/fail', '/reject'])(
    '%s: a generic 500 without the message or a stack; the error to the logger',
    async (path) => {
      const { log, post } = await serve();
      const r = await post(path);
      const body = await r.text();
      expect([r.status, JSON.parse(body)]).toEqual([500, { code: 'InternalError', message: 'Internal Server Error' }]);
      expect(body).not.toMatch(STACK);
      expect(log.errors).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
    },
  );

  /** The onFailure record of an async `POST /fail` (whose route throws) through `createHandler`. */
  async function handlerRecord() {
    const failures: DestinationRecord[] = [];
    const app = express();
    app.post('/fail', () => {
      throw new Error('boom secret-detail');
    });
    const handler = createHandler(app, {
      logger: logger(),
      env: {},
      async: { maxAsyncRetryAttempts: 0 },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    await handler(event('POST', '/fail', '', { 'X-Fc-Invocation-Type': 'Async' }), {});
    await handler.drain();
    await handler.close();
    return failures[0];
  }

  it.each([
    ['local', {}, { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'fails' }],
    ['platform', ON_FC, { ...FC_HEADERS, 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'fails' }],
  ])(
    '%s mode: a replay that throws fails its attempt with the record createHandler gives; the error only in the log',
    async (mode, env, headers) => {
      const log = logger();
      const failures: DestinationRecord[] = [];
      const app = express();
      const middleware = fcAsync({
        logger: log,
        env,
        async: { maxAsyncRetryAttempts: 0 },
        destinations: { onFailure: (record) => void failures.push(record) },
      });
      app.use(middleware);
      app.post('/fail', () => {
        throw new Error('boom secret-detail');
      });
      const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
      cleanup.push(() => server.close());
      const r = await fetch(`http://127.0.0.1:${server.port}/fail`, { method: 'POST', headers });
      expect(r.status).toBe(mode === 'local' ? 202 : 500);
      await middleware.drain();
      if (mode === 'local') expect((await middleware.tasks.get('fails'))?.status).toBe('Failed');
      else expect(r.headers.get('x-fc-status')).toBe('404');
      const expected = await handlerRecord();
      expect(failures[0]?.responseContext).toEqual({ statusCode: 500, functionError: 'UnhandledInvocationError' });
      expect(failures[0]?.responseContext).toEqual(expected?.responseContext);
      expect(failures[0]?.responsePayload).toBe(expected?.responsePayload);
      expect(JSON.stringify(failures[0])).not.toContain('secret-detail');
      expect(log.errors).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
    },
  );

  it("the app's own error middleware answers; an error it passes on gets the generic 500", async () => {
    const { log, post } = await serve((app) => {
      app.use((error: Error, req: express.Request, res: express.Response, next: express.NextFunction) => {
        if (req.path === '/fail') res.status(418).json({ mine: error.message });
        else next(error);
      });
    });
    const own = await post('/fail');
    expect([own.status, await own.json()]).toEqual([418, { mine: 'boom secret-detail' }]);
    expect(log.errors).toHaveLength(0);
    const passed = await post('/reject');
    expect([passed.status, await passed.json()]).toEqual([
      500,
      { code: 'InternalError', message: 'Internal Server Error' },
    ]);
    expect(log.errors).toHaveLength(1);
  });

  it('listen() is the final handler: an error before fcAsync() on the first request, a route added later', async () => {
    const log = logger();
    const app = express();
    app.use((req, _res, next) => next(req.headers.authorization ? undefined : new Error('no auth secret-detail')));
    app.use(fcAsync({ logger: logger(), env: {} }));
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: log });
    cleanup.push(() => server.close());
    const url = `http://127.0.0.1:${server.port}`;
    // The very first request fails before fcAsync() ever ran: Express's own handler would send the stack.
    const first = await fetch(`${url}/late`);
    const body = await first.text();
    expect([first.status, JSON.parse(body)]).toEqual([
      500,
      { code: 'InternalError', message: 'Internal Server Error' },
    ]);
    expect(body).not.toMatch(STACK);
    expect(log.errors).toEqual([expect.objectContaining({ message: 'no auth secret-detail' })]);
    const unmatched = await fetch(`${url}/late`, { headers: { authorization: 'Bearer x' } });
    expect([unmatched.status, await unmatched.json()]).toEqual([
      404,
      { code: 'NotFound', message: 'Cannot GET /late' },
    ]);
    // A route added after the first request (after fcAsync's own final error middleware) is covered too.
    app.get('/late', () => {
      throw new Error('late secret-detail');
    });
    const late = await fetch(`${url}/late`, { headers: { authorization: 'Bearer x' } });
    expect([late.status, await late.json()]).toEqual([
      500,
      { code: 'InternalError', message: 'Internal Server Error' },
    ]);
    expect(log.errors).toHaveLength(2);
  });

  it('on FC, an async call a middleware in front of fcAsync() fails is marked x-fc-status: 404 (FC counted it a success)', async () => {
    const app = express();
    app.use((req, _res, next) => next(req.headers.authorization ? undefined : new Error('no auth')));
    app.use(fcAsync({ logger: logger(), env: ON_FC }));
    app.post('/job', (_req, res) => res.json({ ok: true }));
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger(), env: ON_FC });
    cleanup.push(() => server.close());
    const url = `http://127.0.0.1:${server.port}/job`;
    const asyncCall = { ...FC_HEADERS, 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'front' };
    const failed = await fetch(url, { method: 'POST', headers: asyncCall });
    expect([failed.status, failed.headers.get('x-fc-status')]).toEqual([500, '404']);
    // A sync call's caller sees the 500 itself; an async one that passes is not marked.
    const sync = await fetch(url, { method: 'POST', headers: FC_HEADERS });
    expect([sync.status, sync.headers.get('x-fc-status')]).toEqual([500, null]);
    const passed = await fetch(url, { method: 'POST', headers: { ...asyncCall, authorization: 'Bearer x' } });
    expect([passed.status, passed.headers.get('x-fc-status')]).toEqual([200, null]);
  });

  it.each([
    // docs/async.md's asyncOnly: a call whose x-fc-* headers FC dropped is async; the default says sync.
    [
      'async',
      ((h, e) => {
        const found = detectInvocation(h, e);
        return found.source === 'default' ? { ...found, type: 'Async', source: 'async-only' } : found;
      }) as Detector,
      FC_HEADERS,
      '404',
    ],
    // Every call sync, whatever the retry count says (the default says async).
    [
      'sync',
      ((h, e) => ({ ...detectInvocation(h, e), type: 'Sync', source: 'default' })) as Detector,
      { ...FC_HEADERS, 'x-fc-retry-count': '1' },
      null,
    ],
  ])(
    'on FC, a failure in front of fcAsync() is marked or not by the detect fcAsync() was given (%s)',
    async (_kind, detect, headers, status) => {
      const app = express();
      app.use((_req, _res, next) => next(new Error('auth backend down')));
      app.use(fcAsync({ logger: logger(), env: ON_FC, detect }));
      app.post('/job', (_req, res) => res.json({ ok: true }));
      const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger(), env: ON_FC });
      cleanup.push(() => server.close());
      const r = await fetch(`http://127.0.0.1:${server.port}/job`, { method: 'POST', headers });
      expect([r.status, r.headers.get('x-fc-status')]).toEqual([500, status]);
    },
  );

  it('on FC, a shutdown past its budget aborts a running async call with ShuttingDown before cutting it', async () => {
    const app = express();
    app.use(fcAsync({ logger: logger(), env: ON_FC }));
    const reasons: unknown[] = [];
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    app.post('/job', (req) => {
      const signal = req.fc?.signal;
      signal?.addEventListener('abort', () => reasons.push((signal.reason as { code?: string }).code));
      started();
    });
    const server = await listen(app, {
      port: 0,
      host: '127.0.0.1',
      signals: [],
      logger: logger(),
      env: ON_FC,
      shutdownTimeoutMs: 300,
    });
    const call = fetch(`http://127.0.0.1:${server.port}/job`, {
      method: 'POST',
      headers: { ...FC_HEADERS, 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'long' },
    }).catch(() => undefined);
    await running;
    await server.close();
    await call;
    expect(reasons).toEqual(['ShuttingDown']);
  });

  it('a 4xx error keeps its status, with a stable code, and is not logged', async () => {
    const { log, post } = await serve();
    const r = await post('/json', { headers: { 'content-type': 'application/json' }, body: '{not json' });
    const body = await r.text();
    expect([r.status, JSON.parse(body).code]).toEqual([400, 'entity.parse.failed']);
    expect(body).not.toMatch(STACK);
    expect(log.errors).toHaveLength(0);
  });
});

describe('express listen() binding fcAsync() before the first request', () => {
  it('binds it as a request would: an app also mounted in another one is served, not refused', async () => {
    const api = express();
    api.use(fcAsync({ logger: logger(), env: {} }));
    api.get('/ping', (_req, res) => void res.send('pong'));
    express().use('/v1', api); // api.parent is set: requests bind fcAsync to the outer app
    const server = await listen(api, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => server.close());
    const r = await fetch(`http://127.0.0.1:${server.port}/ping`);
    expect([r.status, await r.text()]).toEqual([200, 'pong']);
  });

  it('rejects, rather than throws, when the middleware already serves another app', async () => {
    const middleware = fcAsync({ logger: logger(), env: {} });
    const first = express().use(middleware);
    const firstServer = await listen(first, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => firstServer.close());
    const second = express().use(middleware);
    let thrown: unknown;
    const listening = (() => {
      try {
        return listen(second, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
      } catch (error) {
        thrown = error;
        return undefined;
      }
    })();
    expect(thrown).toBeUndefined();
    await expect(listening).rejects.toMatchObject({ code: 'MiddlewareSharedAcrossApps' });
  });
});
