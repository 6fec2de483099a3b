/**
 * Fastify's default error answer (the error's message in a 500) that @fastify/compress compressed,
 * hidden by the adapter behind the generic 500: the generic answer goes out plain, without the
 * `content-encoding` of the body it replaced, so that a client decodes it.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import fastifyCompress from '@fastify/compress';
import type { FcServer } from '@fc-async/core';
import { createHandler, fcAsync, listen } from '@fc-async/fastify';
import fastify5 from 'fastify5';
import { afterEach, describe, expect, it } from 'vitest';
import { fc3Event, fcContext, fromFc3Result, recordingLogger } from '../src/index.js';

// biome-ignore lint/suspicious/noExplicitAny: Fastify's typings for a plugin-made app.
type Any = any;

const GENERIC = { code: 'InternalError', message: 'Internal Server Error' };
/** An error message over @fastify/compress's 1 KiB threshold: its default answer goes out compressed. */
const MESSAGE = `insert into orders failed: ${'duplicate key (tenant, sku); '.repeat(50)}`;

const open: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/** One GET on loopback, its body as raw bytes (no decompression), bounded to 5 s. */
function get(base: string, path: string, encoding: string) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers: { 'accept-encoding': encoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${path} did not answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** A Fastify app with @fastify/compress and a route that throws, in a plugin loaded with `await`. */
async function appWithCompress() {
  const app = (fastify5 as Any)();
  await app.register(fastifyCompress);
  await app.register(async (routes: Any) => {
    routes.get('/early', async () => {
      throw new Error(MESSAGE);
    });
  });
  return app;
}

describe.each(['gzip', 'br'])('@fastify/compress (%s) and a hidden default error answer', (encoding) => {
  it('the fcAsync plugin: the generic 500 goes out plain, the message only in the log', async () => {
    const app = await appWithCompress();
    const logger = recordingLogger();
    await app.register(fcAsync, { logger, env: {} });
    app.get('/late', async () => {
      throw new Error(MESSAGE);
    });
    const server: FcServer = await listen(app, {
      port: 0,
      host: '127.0.0.1',
      logger: recordingLogger(),
      signals: [],
    });
    open.push(() => server.close());
    for (const path of ['/early', '/late']) {
      const r = await get(`http://127.0.0.1:${server.port}`, path, encoding);
      expect([path, r.status, r.headers['content-encoding']]).toEqual([path, 500, undefined]);
      expect(JSON.parse(r.body.toString('utf8'))).toEqual(GENERIC);
      expect(r.headers['content-length']).toBe(String(r.body.length));
    }
    expect(logger.text()).toContain('duplicate key (tenant, sku)');
  });

  it('createHandler, a route loaded before it: the FC result is the plain generic 500', async () => {
    const app = await appWithCompress();
    const logger = recordingLogger();
    const handler = createHandler(app, { logger, env: {} });
    open.push(() => handler.close());
    const result = await handler(fc3Event({ path: '/early', headers: { 'accept-encoding': encoding } }), fcContext());
    const reply = fromFc3Result(result as Any);
    expect([reply.status, reply.headers['content-encoding']]).toEqual([500, undefined]);
    expect(reply.json()).toEqual(GENERIC);
    expect(logger.text()).toContain('duplicate key (tenant, sku)');
  });
});
