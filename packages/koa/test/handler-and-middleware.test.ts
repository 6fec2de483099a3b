import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { createHandler, fcAsync } from '../src/index.js';
import { event, logger } from './event.js';

// The app's errors go to the logger of the last createHandler made for it, else its fcAsync()'s.
describe('koa: createHandler and fcAsync() on one app', () => {
  it("the handler's own logger keeps the errors of requests it serves, after the middleware's first request", async () => {
    const app = new Koa();
    const middlewareLog = logger();
    const handlerLog = logger();
    app.use(fcAsync({ logger: middlewareLog, env: {} })); // made first
    app.use(() => {
      throw new Error('boom');
    });
    const handler = createHandler(app, { logger: handlerLog, env: {} }); // made last
    for (let i = 0; i < 2; i++) expect((await handler(event('GET', '/'), {})).statusCode).toBe(500);
    await handler.close();
    // The middleware registers at its first request: it does not take the handler's place.
    expect([handlerLog.errors.length, middlewareLog.errors.length]).toEqual([2, 0]);
  });
});
