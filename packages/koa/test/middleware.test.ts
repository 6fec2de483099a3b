import { type AsyncBackend, MemoryTaskStore, PQueueDriver } from '@fc-async/core';
import Koa from 'koa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fcAsync, listen } from '../src/index.js';
import { logger } from './event.js';

// The behaviour every framework shares runs in packages/test-kit (middleware, listen, tracing).
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanup.splice(0)) await c();
});

describe('koa fcAsync() middleware: an app that throws', () => {
  /** An app served by `listen()`: fcAsync first, then a route that throws (or answers an exposed 422). */
  async function serve(setup: (app: Koa) => void = () => {}) {
    const log = logger();
    const app = new Koa();
    setup(app);
    app.use(fcAsync({ logger: log, env: {} }));
    app.use((ctx) => {
      if (ctx.path === '/shape') ctx.throw(422, 'bad shape');
      throw new Error('boom secret-detail');
    });
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => server.close());
    const post = (path: string) => fetch(`http://127.0.0.1:${server.port}${path}`, { method: 'POST' });
    return { log, post };
  }

  it('listen(): a route that throws null is answered 500, not left hanging', async () => {
    const app = new Koa();
    app.use(fcAsync({ logger: logger(), env: {} }));
    app.use(() => {
      throw null;
    });
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => server.close());
    const r = await fetch(`http://127.0.0.1:${server.port}/`, { signal: AbortSignal.timeout(5000) });
    expect(r.status).toBe(500);
  });

  it("Koa's generic 500; the error goes to fcAsync's logger, not to Koa's console.error", async () => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => {});
    const { log, post } = await serve();
    const r = await post('/fail');
    expect([r.status, await r.text()]).toEqual([500, 'Internal Server Error']);
    expect(log.errors).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
    expect(stderr).not.toHaveBeenCalled();
  });

  it('local mode: a replay that throws fails its attempt, and the error goes to the logger', async () => {
    const log = logger();
    const app = new Koa();
    const middleware = fcAsync({ logger: log, env: {}, async: { maxAsyncRetryAttempts: 0 } });
    app.use(middleware);
    app.use(() => {
      throw new Error('boom secret-detail');
    });
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => server.close());
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'fails' };
    expect((await fetch(`http://127.0.0.1:${server.port}/`, { method: 'POST', headers })).status).toBe(202);
    await middleware.drain();
    expect((await middleware.tasks.get('fails'))?.status).toBe('Failed');
    expect(log.errors).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
  });

  it("the app's own error listener is kept, and fcAsync's logger stays out", async () => {
    const seen: unknown[] = [];
    const { log, post } = await serve((app) => app.on('error', (error) => seen.push(error)));
    expect((await post('/fail')).status).toBe(500);
    expect(seen).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
    expect(log.errors).toHaveLength(0);
  });

  it('an exposed 4xx error is answered by Koa and not logged as a failure', async () => {
    const { log, post } = await serve();
    const r = await post('/shape');
    expect([r.status, await r.text()]).toEqual([422, 'bad shape']);
    expect(log.errors).toHaveLength(0);
  });
});

describe('koa listen() with a durable backend', () => {
  it('runs the tasks a restart recovered at once, before any request reaches the new process', async () => {
    const store = new MemoryTaskStore();
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store, queue: new PQueueDriver(2) }),
    };
    const ran: string[] = [];
    const serve = async () => {
      const app = new Koa();
      app.use(fcAsync({ logger: logger(), env: {}, async: { backend: durable } }));
      app.use((ctx) => {
        ran.push(ctx.path);
        ctx.body = 'done';
      });
      return listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    };
    const first = await serve();
    const r = await fetch(`http://127.0.0.1:${first.port}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'kept', 'x-fc-async-delay': '1' },
    });
    expect(r.status).toBe(202);
    await first.close(); // the delayed task stays in the store for the next start
    expect(store.get('kept')?.status).toBe('Enqueued');
    const second = await serve();
    cleanup.push(() => second.close());
    await vi.waitFor(() => expect(store.get('kept')?.status).toBe('Succeeded'), { timeout: 10_000, interval: 50 });
    expect(ran).toEqual(['/job']);
  });
});
