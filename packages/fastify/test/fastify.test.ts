import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

describe('@fc-async/fastify', () => {
  it('keeps an error handler the app set', async () => {
    const app = Fastify();
    app.setErrorHandler((error, _request, reply) => {
      reply.code(418).send({ mine: (error as Error).message });
    });
    app.get('/', async () => {
      throw new Error('brewing');
    });
    const r = await createHandler(app, { logger: logger() })(event('GET', '/'), {});
    expect(r.statusCode).toBe(418);
    expect(JSON.parse(r.body)).toEqual({ mine: 'brewing' });
  });

  it.each([
    ['registered in an awaited plugin', true],
    ['loaded by app.after()', false],
  ])('routes %s before createHandler answer a 5xx without the error message', async (_label, inPlugin) => {
    const app = Fastify();
    if (inPlugin) {
      await app.register(async (scope) => {
        scope.get('/', async () => {
          throw new Error('password=hunter2');
        });
      });
    } else {
      app.get('/', async () => {
        throw new Error('password=hunter2');
      });
      await app.after();
    }
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/'), {});
    expect(r.statusCode).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
    expect(r.headers['content-length']).toBe(String(r.body.length));
    // The error itself, with its stack, as an onError hook saw it.
    expect(log.errors).toEqual([expect.objectContaining({ message: 'password=hunter2', stack: expect.any(String) })]);
  });

  it('4xx errors keep Fastify’s answer (schema validation)', async () => {
    const app = Fastify();
    app.post('/', { schema: { body: { type: 'object', required: ['name'] } } }, async () => ({ ok: true }));
    const log = logger();
    const r = await createHandler(app, { logger: log })(
      event('POST', '/', '{}', { 'Content-Type': 'application/json' }),
      {},
    );
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ statusCode: 400, code: 'FST_ERR_VALIDATION' });
    expect(log.errors).toHaveLength(0);
  });

  it('the app is made ready once, on the first invocation', async () => {
    const app = Fastify();
    let readies = 0;
    app.addHook('onReady', async () => {
      readies++;
    });
    app.get('/', async () => 'ok');
    const handler = createHandler(app, { logger: logger() });
    expect(readies).toBe(0);
    await Promise.all([handler(event('GET', '/'), {}), handler(event('GET', '/'), {})]);
    await handler(event('GET', '/'), {});
    expect(readies).toBe(1);
  });

  it.each([
    ['right after app.ready()', async (_app: FastifyInstance) => {}],
    ['once app.ready() has settled', () => new Promise((resolve) => setImmediate(resolve))],
    ['listening', (app: FastifyInstance) => app.listen({ port: 0, host: '127.0.0.1' })],
  ])('refuses an app already ready (%s) with FastifyAlreadyReady, before changing it', async (_label, then) => {
    const app = Fastify();
    app.get('/', async () => 'ok');
    await app.ready();
    await then(app);
    try {
      expect(() => createHandler(app, { logger: logger() })).toThrow(
        expect.objectContaining({
          name: 'FcAsyncError',
          code: 'FastifyAlreadyReady',
          message: expect.stringContaining('call createHandler(app)'),
        }),
      );
      expect(app.errorHandler.name).toBe('defaultErrorHandler');
      expect(app.hasRequestDecorator('fc')).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('an app still loading: the error of a plugin registered before createHandler still fails app.ready()', async () => {
    const app = Fastify();
    app.register(async () => {
      throw new Error('plugin broke');
    });
    createHandler(app, { logger: logger() });
    await expect(app.ready()).rejects.toThrow('plugin broke');
  });

  it('rejects something that is not an app', () => {
    expect(() => createHandler({} as never)).toThrow('Expected `app` to be a Fastify instance');
  });
});

describe('fastify createHandler with options it refuses', () => {
  it('leaves the app as it was: a second createHandler answers and logs as usual', async () => {
    const app = Fastify();
    app.get('/', async () => {
      throw new Error('boom');
    });
    expect(() => createHandler(app, { async: { maxAsyncRetryAttempts: 99 } })).toThrow();
    const log = logger();
    const r = await createHandler(app, { logger: log })(event('GET', '/'), {});
    expect(r.statusCode).toBe(500);
    expect(log.errors).toEqual([expect.objectContaining({ message: 'boom' })]);
  });
});
