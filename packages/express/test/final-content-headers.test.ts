import { createReadStream } from 'node:fs';
import { fcHttpEvent } from '@fc-async/core';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler, fcAsync, listen } from '../src/index.js';
import { logger } from './event.js';

/**
 * A route serving a precompressed file sets `Content-Encoding: gzip` before it streams the file; a
 * file that is missing passes its error on before anything went out. Express's own final handler
 * removes the content headers (Content-Encoding, Content-Language, Content-Range) from its error
 * answer; fc-async's, which stands in for it, must too, or its plain JSON goes out labelled gzip.
 */
function precompressed(middleware?: express.RequestHandler) {
  const app = express();
  if (middleware) app.use(middleware);
  app.get('/bundle.js', (_req, res, next) => {
    res.setHeader('Content-Encoding', 'gzip');
    res.setHeader('Content-Language', 'en');
    res.setHeader('Content-Type', 'application/javascript');
    const file = createReadStream('/nonexistent/fc-async/bundle.js.gz');
    file.on('error', next);
    file.pipe(res);
  });
  app.get('/part', (_req, res, next) => {
    res.setHeader('Content-Range', 'bytes 0-9/100');
    next(Object.assign(new Error('gone'), { status: 410 }));
  });
  // An error's own headers stand (send's 416 carries the Content-Range of the whole file).
  app.get('/range', (_req, res, next) => {
    res.setHeader('Content-Range', 'bytes 0-9/100');
    next(Object.assign(new Error('unsatisfiable'), { status: 416, headers: { 'Content-Range': 'bytes */100' } }));
  });
  return app;
}

const open: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

describe('the final error answer drops the content headers the route set, as Express’s own does', () => {
  it('createHandler: a 500 and a 410 without Content-Encoding, Content-Language or Content-Range; a 416 keeps its own', async () => {
    const handler = createHandler(precompressed(), { logger: logger(), env: {} });
    open.push(() => handler.close());
    const failed = await handler(fcHttpEvent({ url: '/bundle.js' }), { requestId: 'r-bundle' });
    const headers = Object.keys(failed.headers ?? {}).map((name) => name.toLowerCase());
    expect([failed.statusCode, headers.filter((name) => name.startsWith('content-'))]).toEqual([
      500,
      ['content-type', 'content-length'],
    ]);
    expect(JSON.parse(failed.body)).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
    const gone = await handler(fcHttpEvent({ url: '/part' }), { requestId: 'r-part' });
    expect([gone.statusCode, Object.keys(gone.headers ?? {}).some((name) => /^content-range$/i.test(name))]).toEqual([
      410,
      false,
    ]);
    const range = await handler(fcHttpEvent({ url: '/range' }), { requestId: 'r-range' });
    const contentRange = Object.entries(range.headers ?? {}).find(([name]) => /^content-range$/i.test(name))?.[1];
    expect([range.statusCode, contentRange]).toEqual([416, 'bytes */100']);
  });

  it('fcAsync() behind listen(): a client reads the 500', async () => {
    const app = precompressed(fcAsync({ logger: logger(), env: {} }));
    const server = await listen(app, { port: 0, host: '127.0.0.1', logger: logger(), signals: [] });
    open.push(() => server.close());
    const r = await fetch(`http://127.0.0.1:${server.port}/bundle.js`, { signal: AbortSignal.timeout(5_000) });
    expect([r.status, r.headers.get('content-encoding'), r.headers.get('content-language')]).toEqual([500, null, null]);
    expect(await r.json()).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
  });
});
