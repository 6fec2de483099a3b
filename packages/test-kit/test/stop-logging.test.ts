import { fcHttpEvent, type Invocation } from '@fc-async/core';
import * as expressAdapter from '@fc-async/express';
import * as fastifyAdapter from '@fc-async/fastify';
import * as koaAdapter from '@fc-async/koa';
import express5 from 'express5';
import fastify5 from 'fastify5';
import koa3 from 'koa3';
import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../src/index.js';

// A task stopped while it runs, whose app rejects with the signal's reason (the docs' pattern): a
// stop the user asked for, logged as that at info, not as the app's crash with a stack at error
// (300 stops at once gave 64 error lines). An app's real failure is still an error.

/** Waits for the invocation's abort, then rejects with its reason; `/boom` fails at once. */
async function work(invocation: Invocation | undefined, path: string): Promise<never> {
  if (path === '/boom') throw new Error('a real failure');
  const signal = invocation?.signal as AbortSignal;
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  throw signal.reason;
}

const APPS = {
  express: (logger: ReturnType<typeof recordingLogger>) => {
    const app = express5();
    app.post('/*path', async (req, res) => {
      res.json(await work(expressAdapter.getInvocation(req), req.path));
    });
    return expressAdapter.createHandler(app, { logger });
  },
  koa: (logger: ReturnType<typeof recordingLogger>) => {
    const app = new koa3();
    app.use(async (ctx) => {
      ctx.body = await work(ctx.fc, ctx.path);
    });
    return koaAdapter.createHandler(app, { logger });
  },
  fastify: (logger: ReturnType<typeof recordingLogger>) => {
    const app = fastify5();
    const handler = fastifyAdapter.createHandler(app, { logger });
    app.post('/*', async (request) => work(request.fc, new URL(request.url, 'http://x').pathname));
    return handler;
  },
};

describe.each(Object.keys(APPS) as (keyof typeof APPS)[])(
  '%s: a stopped task whose app rejects with its abort',
  (name) => {
    it('is logged at info without a stack; a real failure still at error', async () => {
      const logger = recordingLogger();
      const handler = APPS[name](logger);
      const async = { 'x-fc-invocation-type': 'Async' };
      const accepted = await handler(fcHttpEvent({ method: 'POST', url: '/long', headers: async }), {
        requestId: '1-6b0cf409-d2faa387355dad0342807501',
      });
      const taskId = accepted.headers?.['x-fc-async-task-id'] as string;
      await expect.poll(async () => (await handler.tasks.get(taskId))?.status).toBe('Running');
      await handler.tasks.stop(taskId);
      await handler.drain();
      expect((await handler.tasks.get(taskId))?.status).toBe('Stopped');
      expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
      expect(logger.entries).toContainEqual(
        expect.objectContaining({ level: 'info', message: `${name} app ended on its invocation's abort` }),
      );

      await handler(fcHttpEvent({ method: 'POST', url: '/boom' }), {
        requestId: '1-6b0cf409-d2faa387355dad0342807502',
      });
      expect(logger.entries.filter((e) => e.level === 'error').map((e) => e.message)).toEqual([`${name} app failed`]);
      await handler.close();
    });
  },
);
