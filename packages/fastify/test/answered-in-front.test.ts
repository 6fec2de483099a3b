import Fastify, { type onRequestHookHandler } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fcAsync, listen } from '../src/index.js';

// An onRequest hook in front of the plugin that answers, then lets the request go on all the same:
// only a 202 accepts an async call (FC's rule).
const REQUEST_ID = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

function recordingLogger() {
  const warns: { message: string; fields: Record<string, unknown> | undefined }[] = [];
  return {
    warns,
    debug() {},
    info() {},
    error() {},
    warn: (message: string, fields?: Record<string, unknown>) => void warns.push({ message, fields }),
  };
}

/** `front` as the first onRequest hook, then the plugin, then a route that counts its runs. */
async function serve(front: onRequestHookHandler, env: Record<string, string> = {}) {
  const log = recordingLogger();
  const app = Fastify();
  const runs: unknown[] = [];
  app.addHook('onRequest', front);
  await app.register(fcAsync, { logger: log, env, async: { maxAsyncRetryAttempts: 0 } });
  app.post('/job', async (request, reply) => {
    runs.push(request.fc?.source);
    if (!reply.raw.headersSent) return { ran: true };
    reply.hijack();
    reply.raw.end(' route');
  });
  const server = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: log, env });
  cleanup.push(() => server.close());
  const controls = app.fcAsync as NonNullable<typeof app.fcAsync>;
  const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': REQUEST_ID };
  const post = () => fetch(`http://127.0.0.1:${server.port}/job`, { method: 'POST', headers, body: '{}' });
  return { log, controls, runs, post };
}

describe('fastify fcAsync after a hook in front already answered', () => {
  it.each([
    ['local', {}],
    ['platform', ON_FC],
  ])('%s mode: reply.send() then done(): Fastify stops there, nothing is queued or run', async (_mode, env) => {
    const { controls, runs, post } = await serve((_request, reply, done) => {
      reply.code(401).send({ code: 'Unauthorized' });
      done();
    }, env);
    const r = await post();
    expect([r.status, await r.json()]).toEqual([401, { code: 'Unauthorized' }]);
    await controls.drain();
    if (controls.mode === 'local') expect((await controls.tasks.list()).tasks).toEqual([]);
    expect(runs).toEqual([]);
  });

  it.each([
    ['local', {}],
    ['platform', ON_FC],
  ])(
    '%s mode: a response begun in front (its head written) is not accepted: the request goes on as a sync one',
    async (_mode, env) => {
      const { log, controls, runs, post } = await serve((_request, reply, done) => {
        reply.raw.writeHead(200, { 'content-type': 'text/plain' });
        reply.raw.write('head');
        done();
      }, env);
      const r = await post();
      expect([r.status, await r.text()]).toEqual([200, 'head route']);
      await controls.drain();
      if (controls.mode === 'local') expect((await controls.tasks.list()).tasks).toEqual([]);
      expect(runs).toHaveLength(1);
      expect(log.warns).toEqual([
        {
          message: expect.stringContaining('begun'),
          fields: { requestId: expect.stringMatching(/^1-/), statusCode: 200 },
        },
      ]);
    },
  );
});
