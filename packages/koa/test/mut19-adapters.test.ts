import Koa from 'koa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHandler, fcAsync, listen } from '../src/index.js';
import { event, logger } from './event.js';

// Behaviour of the Koa adapter that the nineteenth session's mutation audit found no test holding.

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
  vi.restoreAllMocks();
});

describe('@fc-async/koa: an app whose callback() already ran', () => {
  it("sends its errors to the handler's logger only: Koa's default listener, added then, no longer prints the stack", async () => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => {});
    const app = new Koa();
    app.use(() => {
      throw new Error('boom secret-detail');
    });
    app.callback(); // as `http.createServer(app.callback())` or supertest do: Koa adds its console listener
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/'), {});
    expect(r.statusCode).toBe(500);
    expect(log.errors).toEqual([expect.objectContaining({ message: 'boom secret-detail' })]);
    expect(stderr).not.toHaveBeenCalled();
  });
});

describe('@fc-async/koa listen() without fcAsync()', () => {
  it('answers 500 to a route that throws null, rather than leave the request hanging', async () => {
    const app = new Koa();
    app.use(() => {
      throw null;
    });
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    cleanup.push(() => server.close());
    const r = await fetch(`http://127.0.0.1:${server.port}/`, { signal: AbortSignal.timeout(5000) });
    expect(r.status).toBe(500);
  });
});

describe('@fc-async/koa listen(): where an app error is logged', () => {
  const serve = async (app: Koa, log: ReturnType<typeof logger>) => {
    const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: log });
    cleanup.push(() => server.close());
    return fetch(`http://127.0.0.1:${server.port}/`, { signal: AbortSignal.timeout(5000) });
  };

  it("through options.logger without fcAsync(), not Koa's stack on stderr", async () => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => {});
    const app = new Koa();
    app.use(() => {
      throw new Error('boom in a route');
    });
    const log = logger();
    expect((await serve(app, log)).status).toBe(500);
    expect(log.errors).toEqual([expect.objectContaining({ message: 'boom in a route' })]);
    expect(stderr).not.toHaveBeenCalled();
  });

  it("through the app's fcAsync() logger when it has one", async () => {
    const app = new Koa();
    const own = logger();
    app.use(fcAsync({ logger: own }));
    app.use(() => {
      throw new Error('boom behind fcAsync');
    });
    const log = logger();
    expect((await serve(app, log)).status).toBe(500);
    expect(own.errors).toEqual([expect.objectContaining({ message: 'boom behind fcAsync' })]);
    expect(log.errors).toEqual([]);
  });
});
