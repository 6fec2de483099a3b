import { type AsyncBackend, fcHttpEvent, MemoryTaskStore, PQueueDriver } from '@fc-async/core';
import { createHandler, fcAsync, getInvocation, listen } from '@fc-async/express';
import type { NextFunction, Request, Response } from 'express';
import express4 from 'express4';
import express5 from 'express5';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { recordingLogger } from '../src/index.js';

// Express 4 leaves a rejected async handler unhandled (Node exits); fc-async's stop and timeout
// make handlers reject, so the apps it runs pass a rejection to the error middleware, as Express 5 does.
const GENERIC = { code: 'InternalError', message: 'Internal Server Error' };
const EXPRESS = [
  ['express 4', express4],
  ['express 5', express5],
] as const;

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const errorsOf = (logger: ReturnType<typeof recordingLogger>) =>
  logger.entries.filter((e) => e.level === 'error').map((e) => (e.fields?.error as Error | undefined)?.message);

describe.each(EXPRESS)('%s: an async handler that rejects', (_name, express) => {
  it('createHandler: a route, a router’s route and an async error middleware answer the generic 500', async () => {
    const logger = recordingLogger();
    const app = express();
    app.get('/route', async () => {
      await Promise.resolve();
      throw new Error('route secret-detail');
    });
    const router = express.Router();
    router.get('/inner', async () => {
      throw new Error('router secret-detail');
    });
    app.use('/r', router);
    app.get('/to-error-mw', (_req: Request, _res: Response, next: NextFunction) => next(new Error('first')));
    app.use(async (error: Error, _req: Request, _res: Response, _next: NextFunction) => {
      if (error.message === 'first') throw new Error('error middleware secret-detail');
      throw error;
    });
    const handler = createHandler(app, { logger });
    for (const url of ['/route', '/r/inner', '/to-error-mw']) {
      const out = await handler(fcHttpEvent({ method: 'GET', url }), {});
      expect([url, out.statusCode, JSON.parse(out.body)]).toEqual([url, 500, GENERIC]);
    }
    expect(errorsOf(logger)).toEqual(['route secret-detail', 'router secret-detail', 'error middleware secret-detail']);
  });

  it('a route added to a mounted router once requests came in (after a database is up) is covered too', async () => {
    const logger = recordingLogger();
    const app = express();
    const api = express.Router();
    api.get('/health', (_req: Request, res: Response) => {
      res.send('ok');
    });
    app.use('/api', api);
    const handler = createHandler(app, { logger });
    expect((await handler(fcHttpEvent({ method: 'GET', url: '/api/health' }), {})).statusCode).toBe(200);
    api.get('/orders', async () => {
      throw new Error('orders secret-detail');
    });
    api.route('/items').get(async () => {
      throw new Error('items secret-detail');
    });
    for (const url of ['/api/orders', '/api/items']) {
      const out = await handler(fcHttpEvent({ method: 'GET', url }), {});
      expect([url, out.statusCode]).toEqual([url, 500]);
    }
    expect(errorsOf(logger)).toEqual(['orders secret-detail', 'items secret-detail']);
  });

  it('local mode: a task stopped while its route awaits the signal ends Stopped, the process goes on', async () => {
    const app = express();
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    app.post('/export', async (req: Request, res: Response) => {
      const { signal } = getInvocation(req)!;
      started();
      // The docs' pattern: long work that rejects when the task is stopped.
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      res.json({ done: true });
    });
    const handler = createHandler(app, { logger: recordingLogger(), env: {} });
    cleanup.push(() => handler.close({ timeoutMs: 100 }));
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'export_1' };
    const accepted = await handler(fcHttpEvent({ method: 'POST', url: '/export', headers }), {});
    expect(accepted.statusCode).toBe(202);
    await running;
    await handler.tasks.stop('export_1');
    await handler.drain();
    expect((await handler.tasks.get('export_1'))?.status).toBe('Stopped');
  });

  it('fcAsync() and listen(): a route added after the first request is covered too', async () => {
    const logger = recordingLogger();
    const app = express();
    app.use(fcAsync({ logger, env: {} }));
    app.get('/first', async (_req: Request, res: Response) => {
      res.send('ok');
    });
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger });
    cleanup.push(() => server.close());
    const url = `http://127.0.0.1:${server.port}`;
    expect(await (await fetch(`${url}/first`)).text()).toBe('ok');
    app.get('/later', async () => {
      throw new Error('later secret-detail');
    });
    const r = await fetch(`${url}/later`);
    expect([r.status, await r.json()]).toEqual([500, GENERIC]);
    expect(errorsOf(logger)).toEqual(['later secret-detail']);
  });
});

describe.each(EXPRESS)('%s: listen() before any request', (_name, express) => {
  it('serves an app with no route yet (Express 4 throws on app.router)', async () => {
    const server = await listen(express(), { port: 0, host: '127.0.0.1', signals: [], logger: recordingLogger() });
    cleanup.push(() => server.close());
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
  });

  it('binds fcAsync() to the app, so that the tasks a durable store kept run before any request', async () => {
    const store = new MemoryTaskStore();
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store, queue: new PQueueDriver(2) }),
    };
    const serve = async () => {
      const app = express();
      app.use(fcAsync({ logger: recordingLogger(), env: {}, async: { backend: durable } }));
      app.post('/job', (_req: Request, res: Response) => void res.send('done'));
      return listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: recordingLogger() });
    };
    const first = await serve();
    const accepted = await fetch(`http://127.0.0.1:${first.port}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'kept', 'x-fc-async-delay': '1' },
    });
    expect(accepted.status).toBe(202);
    await first.close();
    const second = await serve();
    cleanup.push(() => second.close());
    await vi.waitFor(() => expect(store.get('kept')?.status).toBe('Succeeded'), { timeout: 10_000, interval: 50 });
  });
});
