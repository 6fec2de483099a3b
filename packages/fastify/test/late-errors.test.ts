import type { DestinationRecord } from '@fc-async/core';
import Fastify, { type RouteHandlerMethod } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

const routes: [string, RouteHandlerMethod][] = [
  [
    'writes the head, then throws',
    (_request, reply) => {
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      throw new Error('broke after the head');
    },
  ],
  [
    'flushes the head and a chunk, then rejects',
    async (_request, reply) => {
      reply.raw.flushHeaders();
      reply.raw.write('first part');
      await Promise.resolve();
      throw new Error('broke after the head');
    },
  ],
];

describe('an async task whose Fastify route fails after the head went out', () => {
  it.each(routes)('%s: the task fails with its error, logged once, one onFailure record', async (_, route) => {
    const app = Fastify();
    app.post('/job', route);
    const failures: DestinationRecord[] = [];
    const log = logger();
    const handler = createHandler(app, {
      logger: log,
      env: {},
      async: { mode: 'local', maxAsyncRetryAttempts: 0 },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    const accepted = await handler(
      event('POST', '/job', '{}', { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'late' }),
      {},
    );
    expect(accepted.statusCode).toBe(202);
    await handler.drain();
    // Before: 'Cannot write headers after they are sent to the client', the error answering it raised.
    expect(await handler.tasks.get('late')).toMatchObject({
      status: 'Failed',
      taskErrorMessage: 'broke after the head',
    });
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['UnhandledInvocationError']);
    expect(log.errors.map((e) => (e as Error).message)).toEqual(['broke after the head']);
    await handler.close();
    await app.close();
  });
});
