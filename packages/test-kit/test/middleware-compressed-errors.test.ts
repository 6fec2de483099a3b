/**
 * An app's error handler answering FC's `{ errorMessage, errorType }` (docs/destinations.md: how
 * to have the error recorded) behind the compression middleware real apps install first: a body
 * over the middleware's default 1 KiB threshold goes out gzipped, and the task and its record must
 * still read the app's message, not `The function answered HTTP 500`.
 */
import { request as httpRequest } from 'node:http';
import fastifyCompress from '@fastify/compress';
import type { DestinationRecord, FcRuntimeOptions, FcServer } from '@fc-async/core';
import { createHandler, fcAsync as expressFcAsync, listen as listenExpress } from '@fc-async/express';
import { fcAsync as fastifyFcAsync, listen as listenFastify } from '@fc-async/fastify';
import { fcAsync as koaFcAsync, listen as listenKoa } from '@fc-async/koa';
import compression from 'compression';
import express4 from 'express4';
import express5 from 'express5';
import fastify5 from 'fastify5';
import koaCompress from 'koa-compress';
import koa2 from 'koa2';
import koa3 from 'koa3';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingLogger } from '../src/index.js';
import { bounded } from './bounded.js';

// biome-ignore lint/suspicious/noExplicitAny: two majors of each framework, with different typings.
type Any = any;

/** Over the 1 KiB the compression middleware leaves alone by default, under the 4,096 a task keeps. */
const MESSAGE = `The order could not be priced: ${'line 7 has no SKU; '.repeat(80)}`.trim();
const FC_ERROR = { errorMessage: MESSAGE, errorType: 'PricingError' };
const ON_FC = { FC_FUNCTION_NAME: 'orders', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };

const open: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/** One request on loopback, bounded to 5 s: its status, content encoding and FC status mark. */
function call(base: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; encoding?: string; fcStatus?: string }>((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          encoding: res.headers['content-encoding'],
          fcStatus: res.headers['x-fc-status'] as string | undefined,
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${path} did not answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

let counter = 0;
function asyncCall(extra: Record<string, string> = {}) {
  const taskId = `ce_${++counter}`;
  const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId, 'accept-encoding': 'gzip' };
  return { taskId, headers: { ...headers, ...extra } };
}

function options(extra: FcRuntimeOptions = {}) {
  const records: DestinationRecord[] = [];
  const opts: FcRuntimeOptions = {
    logger: recordingLogger(),
    env: {},
    destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
    ...extra,
    async: { maxAsyncRetryAttempts: 0, backoff: { baseMs: 1, maxMs: 2 } },
  };
  return { opts, records };
}

const quiet = { port: 0, host: '127.0.0.1', logger: recordingLogger(), signals: [] as NodeJS.Signals[] };

async function served(fc: Promise<FcServer>): Promise<string> {
  const server = await fc;
  open.push(() => server.close());
  return `http://127.0.0.1:${server.port}`;
}

type Controls = { drain(): Promise<void>; tasks: { get(id: string): Promise<unknown> } };

/** Sends one async call, waits for its task, and checks the task and its record read the app's error. */
async function expectAppError(url: string, controls: Controls, records: DestinationRecord[]) {
  const { taskId, headers } = asyncCall();
  expect((await call(url, '/price', headers)).status).toBe(202);
  await bounded(controls.drain(), `task ${taskId}`);
  const task = (await controls.tasks.get(taskId)) as { status: string; taskErrorMessage?: string };
  expect([task.status, task.taskErrorMessage]).toEqual(['Failed', MESSAGE]);
  expect(records).toHaveLength(1);
  expect(records[0]?.responseContext.statusCode).toBe(500);
  expect(JSON.parse(records[0]?.responsePayload ?? '')).toEqual(FC_ERROR);
}

describe.each([
  { name: 'Express 4', express: express4 as Any },
  { name: 'Express 5', express: express5 as Any },
])('$name with compression(): an error handler’s { errorMessage, errorType } recorded', ({ express }) => {
  function build(mw?: Any) {
    const app = express();
    app.use(compression());
    if (mw) app.use(mw);
    app.get('/price', () => {
      throw new Error('priced nothing');
    });
    app.use((_error: unknown, _req: Any, res: Any, _next: Any) => res.status(500).json(FC_ERROR));
    return app;
  }

  it('fcAsync() in local mode: the replay’s gzipped 500 gives the task its message', async () => {
    const { opts, records } = options();
    const mw = expressFcAsync(opts);
    const url = await served(listenExpress(build(mw), quiet));
    // The answer does go out gzipped: what the record reads is decoded from it.
    expect((await call(url, '/price', { 'accept-encoding': 'gzip' })).encoding).toBe('gzip');
    await expectAppError(url, mw, records);
  });

  it('fcAsync() in platform mode: the destination record reads the message, the 500 marked', async () => {
    const { opts, records } = options({ env: ON_FC });
    const url = await served(listenExpress(build(expressFcAsync(opts)), quiet));
    const { headers } = asyncCall({ 'x-fc-request-id': 'r-price' });
    const answer = await call(url, '/price', headers);
    expect([answer.status, answer.encoding, answer.fcStatus]).toEqual([500, 'gzip', '404']);
    expect(records).toHaveLength(1);
    expect(JSON.parse(records[0]?.responsePayload ?? '')).toEqual(FC_ERROR);
  });

  it('createHandler in local mode: the same record', async () => {
    const { opts, records } = options();
    const handler = createHandler(build(), opts);
    open.push(() => handler.close());
    const event = {
      version: 'v1',
      rawPath: '/price',
      headers: asyncCall().headers,
      queryParameters: {},
      body: '',
      isBase64Encoded: false,
      requestContext: { requestId: 'r-handler', http: { method: 'GET', path: '/price', protocol: 'HTTP/1.1' } },
    };
    const taskId = event.headers['x-fc-async-task-id'];
    const accepted = (await handler(Buffer.from(JSON.stringify(event)), { requestId: 'r-handler' } as Any)) as Any;
    expect(accepted.statusCode).toBe(202);
    await bounded(handler.drain(), `task ${taskId}`);
    const task = (await handler.tasks.get(taskId)) as { status: string; taskErrorMessage?: string };
    expect([task.status, task.taskErrorMessage]).toEqual(['Failed', MESSAGE]);
    expect(JSON.parse(records[0]?.responsePayload ?? '')).toEqual(FC_ERROR);
  });
});

describe.each([
  { name: 'Koa 2', Koa: koa2 as Any },
  { name: 'Koa 3', Koa: koa3 as Any },
])('$name with koa-compress: an error middleware’s { errorMessage, errorType } recorded', ({ Koa }) => {
  it('fcAsync() in local mode', async () => {
    const { opts, records } = options();
    const mw = koaFcAsync(opts);
    const app = new Koa();
    app.use(koaCompress());
    app.use(async (ctx: Any, next: Any) => {
      try {
        await next();
      } catch {
        ctx.status = 500;
        ctx.body = FC_ERROR;
      }
    });
    app.use(mw);
    app.use(() => {
      throw new Error('priced nothing');
    });
    const url = await served(listenKoa(app, quiet));
    expect((await call(url, '/price', { 'accept-encoding': 'gzip' })).encoding).toBe('gzip');
    await expectAppError(url, mw, records);
  });
});

describe('Fastify 5 with @fastify/compress: an error handler’s { errorMessage, errorType } recorded', () => {
  it('the fcAsync plugin in local mode', async () => {
    const { opts, records } = options();
    const app = (fastify5 as Any)();
    await app.register(fastifyFcAsync, opts);
    await app.register(fastifyCompress);
    app.setErrorHandler((_error: unknown, _request: Any, reply: Any) => reply.code(500).send(FC_ERROR));
    app.get('/price', async () => {
      throw new Error('priced nothing');
    });
    const url = await served(listenFastify(app, quiet));
    expect((await call(url, '/price', { 'accept-encoding': 'gzip' })).encoding).toBe('gzip');
    await expectAppError(url, app.fcAsync, records);
  });
});
