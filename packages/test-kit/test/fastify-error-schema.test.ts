import { fcHttpEvent } from '@fc-async/core';
import { createHandler, fcAsync } from '@fc-async/fastify';
import fastify4 from 'fastify4';
import fastify5 from 'fastify5';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingLogger } from '../src/index.js';

// A route's response schema for 5xx shapes Fastify's default error answer; `{ message }` kept the
// thrown error's message. Both Fastify majors, through the plugin and through createHandler.
const SCHEMA = { type: 'object', properties: { message: { type: 'string' } } };
const GENERIC = { code: 'InternalError', message: 'Internal Server Error' };
// Both majors called alike (their typings differ in ways these tests do not touch).
const FASTIFY = [
  ['fastify 4', fastify4 as unknown as typeof fastify5],
  ['fastify 5', fastify5],
] as const;

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

describe.each(FASTIFY)('%s: a thrown error on a route with a 5xx response schema', (_name, Fastify) => {
  /** An app whose route throws; with `logger`, the fcAsync plugin registered first. */
  async function build(logger?: ReturnType<typeof recordingLogger>) {
    const app = Fastify();
    apps.push(app);
    if (logger) await app.register(fcAsync, { logger, env: {} });
    app.get('/shaped', { schema: { response: { '5xx': SCHEMA } } }, async () => {
      throw new Error('boom secret-detail');
    });
    return app;
  }

  it('the plugin answers the generic 500', async () => {
    const logger = recordingLogger();
    const r = await (await build(logger)).inject({ url: '/shaped' });
    expect([r.statusCode, r.json()]).toEqual([500, GENERIC]);
    expect(logger.entries.filter((e) => e.level === 'error')).toHaveLength(1);
  });

  it('createHandler answers the generic 500', async () => {
    const handler = createHandler(await build(), { logger: recordingLogger() });
    const out = await handler(fcHttpEvent({ method: 'GET', url: '/shaped' }), {});
    expect([out.statusCode, JSON.parse(out.body)]).toEqual([500, GENERIC]);
  });
});
