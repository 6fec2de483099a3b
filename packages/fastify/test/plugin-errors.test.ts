import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHandler, fcAsync } from '../src/index.js';
import { event, logger } from './event.js';

const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const GENERIC = { code: 'InternalError', message: 'Internal Server Error' };
const SECRET = 'boom secret-detail';

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const app of apps.splice(0)) await app.close();
});

/** An app with the plugin at the root and routes that throw: async at the root, sync in a child plugin. */
async function failing(env: Record<string, string> = {}) {
  const log = logger();
  const app = Fastify();
  apps.push(app);
  await app.register(fcAsync, { logger: log, env, async: { maxAsyncRetryAttempts: 0 } });
  app.post('/fail', async () => {
    throw new Error(SECRET);
  });
  app.register(async (child) => {
    child.post('/fail-sync', () => {
      throw new Error(SECRET);
    });
  });
  return { app, log };
}

const logged = () => [expect.objectContaining({ message: SECRET, stack: expect.stringContaining('\n    at ') })];

// Like createHandler: Fastify's default error handler would echo the error's message to the caller.
describe('fastify fcAsync plugin: an app that throws', () => {
  it.each(['/fail', '/fail-sync'])('%s, sync: a generic 500; the error, with its stack, to the logger', async (url) => {
    const { app, log } = await failing();
    const r = await app.inject({ method: 'POST', url });
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual(GENERIC);
    expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(log.errors).toEqual(logged());
  });

  it('local mode: the replay answers the generic 500, the error to the logger, nothing of it in the task', async () => {
    const { app, log } = await failing();
    const r = await app.inject({ method: 'POST', url: '/fail', headers: { 'x-fc-async-task-id': 'boom' } });
    expect(r.statusCode).toBe(202);
    await app.fcAsync?.drain();
    const task = await app.fcAsync?.tasks.get('boom');
    expect(task?.status).toBe('Failed');
    expect(JSON.stringify(task)).not.toContain('secret-detail');
    expect(log.errors).toEqual(logged());
  });

  it('platform mode: a generic 500 marked x-fc-status 404, the error to the logger', async () => {
    const { app, log } = await failing(ON_FC);
    const r = await app.inject({
      method: 'POST',
      url: '/fail',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'p1', 'x-fc-request-id': 'p1' },
    });
    expect([r.statusCode, r.headers['x-fc-status'], r.json()]).toEqual([500, '404', GENERIC]);
    expect(log.errors).toEqual(logged());
  });

  it('4xx errors Fastify raises keep their status and code: a JSON body that does not parse, validation', async () => {
    const { app, log } = await failing();
    app.post('/named', { schema: { body: { type: 'object', required: ['name'] } } }, async () => ({ ok: true }));
    const json = { 'content-type': 'application/json' };
    const bad = await app.inject({ method: 'POST', url: '/named', headers: json, payload: '{"name":' });
    expect([bad.statusCode, bad.json().code]).toEqual([400, 'FST_ERR_CTP_INVALID_JSON_BODY']);
    const invalid = await app.inject({ method: 'POST', url: '/named', headers: json, payload: '{}' });
    expect([invalid.statusCode, invalid.json().code]).toEqual([400, 'FST_ERR_VALIDATION']);
    expect(log.errors).toHaveLength(0);
  });

  it('an error handler the app sets after the plugin answers, in its scope and below, without a Fastify warning', async () => {
    const warn = vi.spyOn(process, 'emitWarning');
    const { app, log } = await failing();
    app.setErrorHandler((error, _request, reply) => {
      reply.code(418).send({ mine: (error as Error).message });
    });
    app.register(async (child) => {
      child.setErrorHandler((error) => {
        throw error; // passed on to the parent's handler
      });
      child.post('/child', async () => {
        throw new Error('brewing');
      });
    });
    const own = await app.inject({ method: 'POST', url: '/fail' });
    expect([own.statusCode, own.json()]).toEqual([418, { mine: SECRET }]);
    const passed = await app.inject({ method: 'POST', url: '/child' });
    expect([passed.statusCode, passed.json()]).toEqual([418, { mine: 'brewing' }]);
    expect(log.errors).toHaveLength(0);
    expect(warn.mock.calls.flat().join(' ')).not.toContain('FSTWRN004');
  });

  it("an app's own answer in the default's shape goes out as written: who sent it decides, not its shape", async () => {
    const { app, log } = await failing();
    app.setErrorHandler((error, _request, reply) => {
      reply
        .code(500)
        .send({ statusCode: 500, error: 'Internal Server Error', message: `ours: ${(error as Error).message}` });
    });
    const r = await app.inject({ method: 'POST', url: '/fail' });
    expect([r.statusCode, r.json().message]).toEqual([500, `ours: ${SECRET}`]);
    expect(log.errors).toHaveLength(0);
  });

  it('an error handler that passes the error on to Fastify’s default gets the generic 500 too', async () => {
    const { app, log } = await failing();
    app.setErrorHandler((error, _request, reply) => {
      reply.send(error);
    });
    const r = await app.inject({ method: 'POST', url: '/fail' });
    expect([r.statusCode, r.json()]).toEqual([500, GENERIC]);
    expect(log.errors).toEqual(logged());
  });
});

// A route's response schema for the status shapes Fastify's default error answer: `{ message }` kept the message.
describe('fastify: a 5xx response schema on the route', () => {
  const schemas = {
    '{ message }': { type: 'object', properties: { message: { type: 'string' } } },
    '{ error, statusCode }': {
      type: 'object',
      properties: { error: { type: 'string' }, statusCode: { type: 'number' } },
    },
  };

  it.each(Object.entries(schemas))(
    'plugin, schema %s: the generic 500, the error to the logger',
    async (_name, schema) => {
      const { app, log } = await failing();
      app.get('/shaped', { schema: { response: { 500: schema } } }, async () => {
        throw new Error(SECRET);
      });
      app.get('/shaped-5xx', { schema: { response: { '5xx': schema } } }, () => {
        throw new Error(SECRET);
      });
      for (const url of ['/shaped', '/shaped-5xx']) {
        const r = await app.inject({ url });
        expect([r.statusCode, r.json()]).toEqual([500, GENERIC]);
        expect(r.headers['content-length']).toBe(String(r.body.length));
      }
      expect(log.errors).toEqual([...logged(), ...logged()]);
    },
  );

  it("plugin: an app's own error answer still goes through the route's schema", async () => {
    const { app, log } = await failing();
    app.setErrorHandler((_error, _request, reply) => {
      reply.code(503).send({ message: 'try later', internal: 'dropped by the schema' });
    });
    app.get('/shaped', { schema: { response: { 503: schemas['{ message }'] } } }, async () => {
      throw new Error(SECRET);
    });
    const r = await app.inject({ url: '/shaped' });
    expect([r.statusCode, r.json()]).toEqual([503, { message: 'try later' }]);
    expect(log.errors).toHaveLength(0);
  });

  it.each(Object.entries(schemas))('createHandler, schema %s: the generic 500 as it is', async (_name, schema) => {
    const log = logger();
    const app = Fastify();
    apps.push(app);
    app.get('/shaped', { schema: { response: { '5xx': schema } } }, async () => {
      throw new Error(SECRET);
    });
    const out = await createHandler(app, { logger: log })(event('GET', '/shaped'), {});
    expect([out.statusCode, JSON.parse(out.body)]).toEqual([500, GENERIC]);
    expect(log.errors).toEqual(logged());
  });
});

describe('fastify fcAsync plugin: one per app', () => {
  const message = /fcAsync is already registered in this Fastify app/;

  it('a second one in a child plugin is refused at register', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(fcAsync, { logger: logger(), env: {} });
    const second = app.register(async (child) => {
      await child.register(fcAsync, { logger: logger(), env: {} });
    });
    await expect(second.then(() => 'registered')).rejects.toThrow(message);
  });

  it('a second one on the root, or in a sibling plugin, is refused with the same error', async () => {
    const root = Fastify();
    apps.push(root);
    await root.register(fcAsync, { logger: logger(), env: {} });
    const twice = root.register(fcAsync, { logger: logger(), env: {} });
    await expect(twice.then(() => 'registered')).rejects.toMatchObject({
      name: 'FcAsyncError',
      code: 'FcAsyncAlreadyRegistered',
      message: expect.stringMatching(message),
    });
    // In a sibling plugin (encapsulated), even the first is refused: it would cover that plugin only.
    const siblings = Fastify();
    apps.push(siblings);
    const sibling = siblings.register(async (a) => a.register(fcAsync, { logger: logger(), env: {} }));
    await expect(sibling.then(() => 'registered')).rejects.toMatchObject({ code: 'FcAsyncNotOnRoot' });
  });

  it('two apps each take their own', async () => {
    for (let i = 0; i < 2; i++) {
      const app = Fastify();
      apps.push(app);
      await app.register(fcAsync, { logger: logger(), env: {} });
      await app.ready();
    }
  });
});

// The fcAsync plugin leaves error handling to Fastify's (or the app's) handler: once the head is
// out, Fastify's default handler cannot answer, and destroyed the response with the
// ERR_HTTP_HEADERS_SENT its answer raised, which the task then recorded in place of the app's error.
describe('fastify fcAsync plugin: a route that fails after the head went out', () => {
  it.each([
    [
      'writes the head, then throws',
      (_request: unknown, reply: { raw: import('node:http').ServerResponse }) => {
        reply.raw.writeHead(200, { 'content-type': 'text/plain' });
        throw new Error('broke after the head');
      },
    ],
    [
      'flushes the head and a chunk, then rejects',
      async (_request: unknown, reply: { raw: import('node:http').ServerResponse }) => {
        reply.raw.flushHeaders();
        reply.raw.write('first part');
        await Promise.resolve();
        throw new Error('broke after the head');
      },
    ],
  ])('%s: the task fails with the app error, one onFailure record', async (_, route) => {
    const log = logger();
    const app = Fastify();
    apps.push(app);
    const failures: unknown[] = [];
    await app.register(fcAsync, {
      logger: log,
      env: {},
      async: { maxAsyncRetryAttempts: 0 },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    app.post('/late', route);
    const r = await app.inject({ method: 'POST', url: '/late', headers: { 'x-fc-async-task-id': 'late' } });
    expect(r.statusCode).toBe(202);
    await app.fcAsync?.drain();
    expect(await app.fcAsync?.tasks.get('late')).toMatchObject({
      status: 'Failed',
      taskErrorMessage: 'broke after the head',
    });
    expect(failures).toHaveLength(1);
    expect(log.errors.map((e) => (e as Error).message)).toEqual(['broke after the head']);
  });
});
