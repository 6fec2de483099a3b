import express from 'express';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

describe('@fc-async/express', () => {
  it("keeps the app's own error middleware", async () => {
    const app = express();
    app.get('/teapot', () => {
      throw new Error('brewing');
    });
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(418).json({ mine: err.message });
    });
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/teapot'), {});
    expect(r.statusCode).toBe(418);
    expect(JSON.parse(r.body)).toEqual({ mine: 'brewing' });
    expect(log.errors).toHaveLength(0);
  });

  it('a 4xx error from middleware keeps its status, with a stable code', async () => {
    const app = express();
    app.post('/json', express.json(), (_req, res) => res.end());
    const r = await createHandler(app, { logger: logger() })(
      event('POST', '/json', '{not json', { 'Content-Type': 'application/json' }),
      {},
    );
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'entity.parse.failed' });
  });

  it('an error after the response started is logged (once) and the response still ends', async () => {
    const app = express();
    app.get('/half', (_req, res, next) => {
      res.write('partial');
      next(new Error('late'));
    });
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/half'), {});
    expect(r.statusCode).toBe(500);
    expect(log.errors.map((e) => (e as Error).message)).toEqual(['late']);
  });

  it.each([
    ['no error middleware', undefined, 'The function answered HTTP 500'],
    ['an error middleware answering FC’s error body', 'body', 'video broken'],
  ])('an async task whose route throws, with %s: the record says what FC would', async (_, withHandler, message) => {
    const app = express();
    app.post('/transcode', () => {
      throw new Error('video broken');
    });
    if (withHandler)
      app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        res.status(500).json({ errorMessage: err.message, errorType: err.name });
      });
    const handler = createHandler(app, {
      logger: logger(),
      env: {},
      async: { mode: 'local', maxAsyncRetryAttempts: 0 },
    });
    const accepted = await handler(
      event('POST', '/transcode', '{}', { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'thrown' }),
      {},
    );
    expect(accepted.statusCode).toBe(202);
    await handler.drain();
    expect(await handler.tasks.get('thrown')).toMatchObject({ status: 'Failed', taskErrorMessage: message });
    await handler.close();
  });

  it("keeps an error's 4xx or 5xx status and its headers, as Express does; a 5xx's message stays in the log", async () => {
    const app = express();
    app.get('/busy', (_req, _res, next) =>
      next(Object.assign(new Error('db pool drained'), { status: 503, headers: { 'retry-after': '5' } })),
    );
    app.get('/verb', (_req, _res, next) =>
      next(Object.assign(new Error('use POST'), { status: 405, headers: { allow: 'POST' } })),
    );
    const log = logger();
    const handler = createHandler(app, { logger: log });
    const busy = await handler(event('GET', '/busy'), {});
    expect([busy.statusCode, busy.headers?.['retry-after']]).toEqual([503, '5']);
    expect(JSON.parse(busy.body)).toEqual({ code: 'ServiceUnavailable', message: 'Service Unavailable' });
    expect(log.errors).toHaveLength(1);
    const verb = await handler(event('GET', '/verb'), {});
    expect([verb.statusCode, verb.headers?.allow]).toEqual([405, 'POST']);
    expect(JSON.parse(verb.body)).toEqual({ code: 'MethodNotAllowed', message: 'Method Not Allowed' });
  });

  it('rejects something that is not an app', () => {
    expect(() => createHandler({} as never)).toThrow('Expected `app` to be an Express application, got `object`');
  });
});
