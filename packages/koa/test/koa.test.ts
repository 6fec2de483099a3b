import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

describe('@fc-async/koa', () => {
  it('answers 500 to a middleware that throws or rejects with null or undefined, and logs it (Koa answers nothing)', async () => {
    for (const thrown of [null, undefined]) {
      const app = new Koa();
      app.use(async () => {
        await Promise.resolve();
        throw thrown;
      });
      const log = logger();
      const r = await createHandler(app, { logger: log })(event('GET', '/'), {});
      expect(r.statusCode).toBe(500);
      expect(log.errors.map((e) => (e as Error).message)).toEqual([`The app threw ${String(thrown)}`]);
    }
  });

  it("keeps the app's own error listener", async () => {
    const app = new Koa();
    const seen: unknown[] = [];
    app.on('error', (e) => seen.push(e));
    app.use(() => {
      throw new Error('mine');
    });
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/'), {});
    expect(r.statusCode).toBe(500);
    expect(seen).toHaveLength(1);
    expect(log.errors).toHaveLength(0);
  });

  it('leaves the errors to a listener the app adds after createHandler, as Koa leaves them (not logged twice)', async () => {
    const app = new Koa();
    app.use(() => {
      throw new Error('db down');
    });
    const log = logger();
    const handler = createHandler(app, { logger: log });
    const seen: unknown[] = [];
    app.on('error', (e) => seen.push(e));
    expect((await handler(event('GET', '/'), {})).statusCode).toBe(500);
    expect(seen).toHaveLength(1);
    expect(log.errors).toHaveLength(0);
  });

  it('still logs with app.silent set (it turns off Koa’s own stderr output; the logger is where errors go)', async () => {
    const app = new Koa();
    app.silent = true;
    app.use(() => {
      throw new Error('expected failure under test');
    });
    const log = logger();
    expect((await createHandler(app, { logger: log })(event('GET', '/'), {})).statusCode).toBe(500);
    expect(log.errors).toHaveLength(1);
  });

  it('an exposed 4xx error is answered by Koa and not logged as a failure', async () => {
    const app = new Koa();
    app.use((ctx) => ctx.throw(422, 'bad shape'));
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/'), {});
    expect(r.statusCode).toBe(422);
    expect(r.body).toBe('bad shape');
    expect(log.errors).toHaveLength(0);
  });

  it('middleware added after createHandler still runs', async () => {
    const app = new Koa();
    const handler = createHandler(app, { logger: logger() });
    app.use((ctx) => {
      ctx.body = 'late';
    });
    expect((await handler(event('GET', '/'), {})).body).toBe('late');
  });

  it('rejects something that is not an app', () => {
    expect(() => createHandler({} as never)).toThrow('Expected `app` to be a Koa application');
  });
});
