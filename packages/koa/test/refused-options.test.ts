import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

// A createHandler whose options are refused (an async option out of range) leaves the app as it
// was: no `error` listener without a handler behind it, which a second createHandler would take for
// the app's own (and every app error would then throw a TypeError instead of being logged).
describe('koa createHandler after a call that threw on its async options', () => {
  it("still logs the app's errors through the second call's logger", async () => {
    const app = new Koa();
    app.use(() => {
      throw new Error('boom');
    });
    expect(() => createHandler(app, { async: { maxAsyncRetryAttempts: 99 } })).toThrow();
    const log = logger();
    const handler = createHandler(app, { logger: log });
    const out = await Promise.race([
      handler(event('GET', '/'), {}),
      new Promise((resolve) => setTimeout(() => resolve('no answer'), 1000)),
    ]);
    expect((out as { statusCode?: number }).statusCode).toBe(500);
    expect(log.errors).toEqual([expect.objectContaining({ message: 'boom' })]);
  });
});

describe('koa: a handler per test over one app', () => {
  it("logs the app's errors through the handler made last", async () => {
    const app = new Koa();
    app.use(() => {
      throw new Error('boom');
    });
    const first = logger();
    await createHandler(app, { logger: first })(event('GET', '/'), {});
    const second = logger();
    expect((await createHandler(app, { logger: second })(event('GET', '/'), {})).statusCode).toBe(500);
    expect([first.errors.length, second.errors.length]).toEqual([1, 1]);
  });
});
