import { Readable } from 'node:stream';
import type { DestinationRecord } from '@fc-async/core';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

// Koa's ctx.onerror answers nothing once the head went out, and leaves the response open.
const routes: [string, Koa.Middleware][] = [
  [
    'writes the head, then throws',
    (ctx) => {
      ctx.res.writeHead(200, { 'content-type': 'text/plain' });
      throw new Error('broke after the head');
    },
  ],
  [
    'flushes the head, then rejects',
    async (ctx) => {
      ctx.status = 200;
      ctx.res.flushHeaders();
      await Promise.resolve();
      throw new Error('broke after the head');
    },
  ],
  [
    'streams a body that fails midway',
    (ctx) => {
      let sent = false;
      ctx.type = 'text/plain';
      ctx.body = new Readable({
        read() {
          if (sent) {
            this.destroy(new Error('broke after the head'));
            return;
          }
          sent = true;
          this.push('first part');
        },
      });
    },
  ],
];

describe('an async task whose Koa app fails after the head went out', () => {
  it.each(routes)('%s: the attempt fails at once with its error, one onFailure record', async (_, route) => {
    const app = new Koa();
    app.use(route);
    const failures: DestinationRecord[] = [];
    const log = logger();
    const handler = createHandler(app, {
      logger: log,
      env: {},
      // Before the fix the response stayed open: the attempt ended at this timeout, as InvocationError.
      async: { mode: 'local', maxAsyncRetryAttempts: 0, timeoutSeconds: 10 },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    const accepted = await handler(
      event('POST', '/job', '{}', { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'late' }),
      {},
    );
    expect(accepted.statusCode).toBe(202);
    await handler.drain();
    expect(await handler.tasks.get('late')).toMatchObject({
      status: 'Failed',
      taskErrorMessage: 'broke after the head',
    });
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext.condition).toBe('UnhandledInvocationError');
    expect(log.errors.map((e) => (e as Error).message)).toEqual(['broke after the head']);
    await handler.close();
  });

  it('a string thrown after the head fails the attempt with its text, logged once', async () => {
    const app = new Koa();
    app.use((ctx) => {
      ctx.res.writeHead(200);
      throw 'disk full';
    });
    const log = logger();
    const handler = createHandler(app, {
      logger: log,
      env: {},
      async: { mode: 'local', maxAsyncRetryAttempts: 0, timeoutSeconds: 10 },
    });
    await handler(event('POST', '/job', '{}', { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 's' }), {});
    await handler.drain();
    expect(await handler.tasks.get('s')).toMatchObject({ status: 'Failed', taskErrorMessage: 'disk full' });
    expect(log.errors.map((e) => (e as Error).message)).toEqual(['disk full']);
    await handler.close();
  });

  it("an app's own app.context.onerror still handles the late error, then the response is destroyed", async () => {
    const app = new Koa();
    const handled: unknown[] = [];
    // Set before the handler is made, like Koa's own: it answers nothing once the head went out.
    app.context.onerror = function ownOnerror(error: unknown) {
      if (error !== null && error !== undefined) handled.push(error);
    };
    app.use((ctx) => {
      ctx.res.writeHead(200);
      throw new Error('broke after the head');
    });
    const handler = createHandler(app, {
      logger: logger(),
      env: {},
      async: { mode: 'local', maxAsyncRetryAttempts: 0, timeoutSeconds: 10 },
    });
    await handler(event('POST', '/job', '{}', { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'own' }), {});
    await handler.drain();
    expect(await handler.tasks.get('own')).toMatchObject({
      status: 'Failed',
      taskErrorMessage: 'broke after the head',
    });
    expect(handled.map((e) => (e as Error).message)).toEqual(['broke after the head']);
    await handler.close();
  });
});
