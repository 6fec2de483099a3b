import {
  type DestinationRecord,
  type FcHandler,
  type FcHandlerOptions,
  fcHttpEvent,
  silentLogger,
} from '@fc-async/core';
import * as fcExpress from '@fc-async/express';
import * as fcFastify from '@fc-async/fastify';
import { within } from '@fc-async/test-kit/wait';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createExpressHandler } from '../src/express.js';
import { createFastifyHandler } from '../src/fastify.js';
import { AppModule } from '../src/orders.js';

// The example's Nest app through createHandler() on both of Nest's platforms, called with the
// events FC 3.0 passes a built-in runtime.
const platforms = [
  ['Express', createExpressHandler],
  ['Fastify', createFastifyHandler],
] as const;

const json = (body: string | undefined) => JSON.parse(body ?? '') as Record<string, unknown>;

describe.each(platforms)('Nest on %s, as an FC 3.0 handler', (_name, create) => {
  let handler: FcHandler;
  const succeeded: DestinationRecord[] = [];
  const failed: DestinationRecord[] = [];
  beforeAll(async () => {
    const options: FcHandlerOptions = {
      logger: silentLogger,
      async: { maxAsyncRetryAttempts: 1, backoff: { baseMs: 1, maxMs: 1 } },
      destinations: { onSuccess: (r) => void succeeded.push(r), onFailure: (r) => void failed.push(r) },
    };
    handler = await create(options);
  });
  afterAll(() => handler?.close());

  /** Waits for the handler's tasks to finish, failing the test rather than hanging it. */
  async function drained() {
    expect(await within(handler.drain(), 10_000)).not.toBe('still waiting');
  }

  it('answers a sync GET and a POST with a JSON body as Nest does (201 for a POST)', async () => {
    const got = await handler(fcHttpEvent({ url: '/orders/1' }));
    expect(got).toMatchObject({ statusCode: 200, isBase64Encoded: false });
    expect(json(got.body)).toEqual({ id: '1', item: 'tea' });
    const posted = await handler(fcHttpEvent({ method: 'POST', url: '/orders', body: { item: 'cake' } }));
    expect(posted.statusCode).toBe(201);
    expect(json(posted.body)).toMatchObject({ item: 'cake' });
  });

  it('gives a controller the invocation through @Req() and getInvocation()', async () => {
    const event = fcHttpEvent({ method: 'POST', url: '/thumbnails', body: { image: 'cat.jpg' } });
    const got = await handler(event, { requestId: 'c0ffee-1' });
    expect(json(got.body)).toEqual({ made: 'cat.jpg.thumb.png', type: 'Sync', attempt: 0, requestId: 'c0ffee-1' });
  });

  it('accepts an async call with 202 and its task id, runs it, and sends the outcome to onSuccess', async () => {
    const event = fcHttpEvent({
      method: 'POST',
      url: '/thumbnails',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': `thumb-${_name}` },
      body: { image: 'dog.jpg' },
    });
    const accepted = await handler(event);
    expect(accepted.statusCode).toBe(202);
    expect(accepted.headers?.['x-fc-async-task-id']).toBe(`thumb-${_name}`);
    await drained();
    const task = await handler.tasks.get(`thumb-${_name}`);
    expect(task?.status).toBe('Succeeded');
    const record = succeeded.find((r) => r.requestContext.requestId === accepted.headers?.['x-fc-request-id']);
    expect(JSON.parse(String(record?.responsePayload))).toMatchObject({
      made: 'dog.jpg.thumb.png',
      type: 'Async',
      attempt: 0,
    });
  });

  it("keeps an HttpException's status and body, and answers an unknown route Nest's 404", async () => {
    const missing = await handler(fcHttpEvent({ url: '/orders/99' }));
    expect(missing.statusCode).toBe(404);
    expect(json(missing.body)).toEqual({ statusCode: 404, error: 'Not Found', message: 'No order 99' });
    const unknown = await handler(fcHttpEvent({ method: 'DELETE', url: '/nowhere' }));
    expect(unknown.statusCode).toBe(404);
    expect(json(unknown.body)).toEqual({ statusCode: 404, error: 'Not Found', message: 'Cannot DELETE /nowhere' });
  });

  it("answers a crash with Nest's generic 500, no message, stack nor secret; the log line names the request id", async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const headers = { authorization: 'Bearer s3cret', cookie: 'sid=c00kie' };
      const crashed = await handler(fcHttpEvent({ url: '/crash', headers }), { requestId: `crash-id-${_name}` });
      expect(crashed.statusCode).toBe(500);
      expect(json(crashed.body)).toEqual({ statusCode: 500, message: 'Internal server error' });
      expect(crashed.body).not.toMatch(/hunter2|orders\.ts|s3cret|c00kie/);
      const logged = stderr.mock.calls.map(([chunk]) => String(chunk)).join('');
      const line = logged.split('\n').find((l) => l.includes('hunter2'));
      expect(line).toContain(`requestId=crash-id-${_name} database password is hunter2`);
      expect(line).toContain('ExceptionsHandler');
      expect(logged).toContain('orders.ts'); // the stack, in the log only
      expect(logged).not.toMatch(/s3cret|c00kie/);
    } finally {
      stderr.mockRestore();
    }
  });

  it('logs nothing for an HttpException, which Nest answers itself', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect((await handler(fcHttpEvent({ url: '/orders/98' }))).statusCode).toBe(404);
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      stderr.mockRestore();
    }
  });

  it('retries an async call Nest answers 500, then sends it to onFailure without the credentials', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const event = fcHttpEvent({
        url: '/crash',
        headers: {
          'x-fc-invocation-type': 'Async',
          'x-fc-async-task-id': `crash-${_name}`,
          authorization: 'Bearer s3cret',
        },
      });
      const accepted = await handler(event);
      expect(accepted.statusCode).toBe(202);
      await drained();
      // Both attempts run under the request id the caller got with its 202.
      const lines = stderr.mock.calls.map(([chunk]) => String(chunk)).filter((l) => l.includes('hunter2'));
      const requestId = accepted.headers?.['x-fc-request-id'];
      expect(requestId).toBeTruthy();
      expect(lines.filter((l) => l.includes(`requestId=${requestId} `))).toHaveLength(2);
    } finally {
      stderr.mockRestore();
    }
    const task = await handler.tasks.get(`crash-${_name}`);
    expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1 });
    const record = failed.find((r) => JSON.stringify(r).includes(`crash-${_name}`));
    expect(record?.responseContext.statusCode).toBe(500);
    expect(JSON.stringify(record)).not.toContain('s3cret');
  });
});

describe('handing fc-async the Nest app itself rather than the app under it', () => {
  it('is refused with what to pass instead, on both platforms, by createHandler and listen', async () => {
    const expressNest = await NestFactory.create(AppModule, { logger: false });
    const fastifyNest = await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false });
    const hint =
      /this is a NestJS application: pass the app under it, `app\.getHttpAdapter\(\)\.getInstance\(\)`, after `await app\.init\(\)`/;
    expect(() => fcExpress.createHandler(expressNest as never)).toThrow(hint);
    await expect(fcExpress.listen(expressNest as never)).rejects.toThrow(hint);
    expect(() => fcFastify.createHandler(fastifyNest as never)).toThrow(hint);
    await expect(fcFastify.listen(fastifyNest as never)).rejects.toThrow(hint);
    await Promise.all([expressNest.close(), fastifyNest.close()]);
  });
});
