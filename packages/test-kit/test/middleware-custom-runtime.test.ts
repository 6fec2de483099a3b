/**
 * The custom-runtime middleware (`app.use(fcAsync())`, Fastify's plugin) among the middleware
 * real apps carry, placed before and after it, on real loopback servers started by `listen()`:
 * the 202, the replay through the same app, platform mode's collected answer and `x-fc-status`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fastifyCompress from '@fastify/compress';
import fastifyCors from '@fastify/cors';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import type { DestinationRecord, FcRuntimeOptions, FcServer, Invocation } from '@fc-async/core';
import { fcAsync as expressFcAsync, getInvocation, listen as listenExpress } from '@fc-async/express';
import { fcAsync as fastifyFcAsync, listen as listenFastify } from '@fc-async/fastify';
import { fcAsync as koaFcAsync, listen as listenKoa } from '@fc-async/koa';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import compression from 'compression';
import cookieParser from 'cookie-parser';
import cors from 'cors';
import { rateLimit } from 'express-rate-limit';
import session from 'express-session';
import express4 from 'express4';
import express5 from 'express5';
import fastify5 from 'fastify5';
import helmet from 'helmet';
import koaCompress from 'koa-compress';
import koaStatic from 'koa-static';
import koa2 from 'koa2';
import koa3 from 'koa3';
import morgan from 'morgan';
import multer from 'multer';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { recordingLogger } from '../src/index.js';
import { bounded } from './bounded.js';

// biome-ignore lint/suspicious/noExplicitAny: two majors of each framework, with different typings.
type Any = any;

const dir = mkdtempSync(join(tmpdir(), 'fc-async-cr-'));
const HELLO = 'hello from disk ✓\n';
writeFileSync(join(dir, 'hello.txt'), HELLO);
const BIG = { items: Array.from({ length: 500 }, (_, i) => ({ id: i, name: `item-${i}` })) };
const BIG_TEXT = JSON.stringify(BIG);
const SECRET_AUTH = 'Bearer tok-secret-123';
const SECRET_COOKIE = 'connect.sid=sid-secret-456';
const ON_FC = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };

const open: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request on loopback, the body as raw bytes (no decompression), bounded to 5 s. */
function call(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
) {
  return new Promise<Raw>((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`${init.method ?? 'GET'} ${path} did not answer within 5 s`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** A multipart/form-data body with one file. */
function multipart(name: string, file: Buffer) {
  const boundary = `----fcasync${randomBytes(8).toString('hex')}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const body = Buffer.concat([Buffer.from(head), file, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

let counter = 0;
const asyncHeaders = (extra: Record<string, string> = {}) => {
  const taskId = `cr_${++counter}`;
  return { taskId, headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId, ...extra } };
};

/** fcAsync options: quiet, local mode unless `env` says FC, destinations recorded. */
function options(extra: FcRuntimeOptions = {}) {
  const records: DestinationRecord[] = [];
  const logger = recordingLogger();
  const opts: FcRuntimeOptions = {
    logger,
    env: {},
    destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
    ...extra,
    async: { maxAsyncRetryAttempts: 0, backoff: { baseMs: 1, maxMs: 2 }, ...extra.async },
  };
  return { opts, records, logger };
}

const quiet = { port: 0, host: '127.0.0.1', logger: recordingLogger(), signals: [] as NodeJS.Signals[] };

async function served(fc: Promise<FcServer>): Promise<string> {
  const server = await fc;
  open.push(() => server.close());
  return `http://127.0.0.1:${server.port}`;
}

/** The record of a task, waited for with `drain()`. */
async function finished(
  controls: { drain(): Promise<void>; tasks: { get(id: string): Promise<unknown> } },
  id: string,
) {
  await bounded(controls.drain(), `task ${id}`);
  return (await controls.tasks.get(id)) as { status: string; returnPayload?: string; taskPayload?: string };
}

describe.each([
  { name: 'Express 4', express: express4 as Any },
  { name: 'Express 5', express: express5 as Any },
])('$name custom runtime among real middleware', ({ express }) => {
  async function start(setup: (app: Any, mw: Any) => void, extra: FcRuntimeOptions = {}) {
    const { opts, records, logger } = options(extra);
    const app = express();
    const mw = expressFcAsync(opts);
    setup(app, mw);
    const url = await served(listenExpress(app, quiet));
    return { url, mw, records, logger };
  }

  it('compression before fcAsync: an intact 202, the replay recorded decoded, sync gzipped once', async () => {
    const { url, mw, records } = await start((app, mw) => {
      app.use(compression({ threshold: 0 }));
      app.use(mw);
      app.get('/big', (_req: Any, res: Any) => res.json(BIG));
    });
    const { taskId, headers } = asyncHeaders({ 'accept-encoding': 'gzip' });
    const accepted = await call(url, '/big', { headers });
    expect(accepted.status).toBe(202);
    expect(accepted.headers['x-fc-async-task-id']).toBe(taskId);
    expect(accepted.body.length).toBe(0);
    const task = await finished(mw, taskId);
    expect(task.status).toBe('Succeeded');
    // Compressed as sent, recorded decoded: the text the app wrote.
    expect(records[0]?.responsePayload).toBe(BIG_TEXT);
    const sync = await call(url, '/big', { headers: { 'accept-encoding': 'gzip' } });
    expect(sync.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(sync.body).toString()).toBe(BIG_TEXT);
  });

  it('compression before fcAsync, platform mode: the collected answer is not compressed twice', async () => {
    const { url } = await start(
      (app, mw) => {
        app.use(compression({ threshold: 0 }));
        app.use(mw);
        app.get('/big', (_req: Any, res: Any) => res.json(BIG));
        app.get('/fail', (_req: Any, res: Any) => res.status(500).json({ code: 'Broken' }));
      },
      { env: ON_FC },
    );
    const headers = { ...asyncHeaders({ 'accept-encoding': 'gzip' }).headers, 'x-fc-request-id': 'r1' };
    const ok = await call(url, '/big', { headers });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(ok.body).toString()).toBe(BIG_TEXT);
    expect(ok.headers['x-fc-status']).toBeUndefined();
    const failed = await call(url, '/fail', { headers: { ...headers, 'x-fc-request-id': 'r2' } });
    expect(failed.status).toBe(500);
    expect(failed.headers['x-fc-status']).toBe('404');
    expect(JSON.parse(gunzipSync(failed.body).toString())).toEqual({ code: 'Broken' });
  });

  it('express.static after fcAsync: an async GET of a file is 202, then the replay reads the file', async () => {
    const { url, mw, records } = await start((app, mw) => {
      app.use(mw);
      app.use(express.static(dir));
    });
    const { taskId, headers } = asyncHeaders();
    expect((await call(url, '/hello.txt', { headers })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(records[0]?.responseContext.statusCode).toBe(200);
    expect(records[0]?.responsePayload).toBe(HELLO);
    // A file missing: the replay's 404 comes from the fallback, as JSON, no stack.
    const missing = asyncHeaders();
    await call(url, '/nope.txt', { headers: missing.headers });
    await finished(mw, missing.taskId);
    expect(JSON.parse(records[1]?.responsePayload ?? '')).toEqual({
      code: 'NotFound',
      message: 'Cannot GET /nope.txt',
    });
  });

  it('express.static before fcAsync answers the file itself: the async header never reaches fcAsync', async () => {
    const { url, mw } = await start((app, mw) => {
      app.use(express.static(dir));
      app.use(mw);
    });
    const { taskId, headers } = asyncHeaders();
    const r = await call(url, '/hello.txt', { headers });
    expect([r.status, r.text]).toEqual([200, HELLO]);
    expect(await mw.tasks.get(taskId)).toBeUndefined();
  });

  it('express.json() before fcAsync: an async JSON request is a clear 500 BodyAlreadyRead, sync unaffected', async () => {
    const { url, mw } = await start((app, mw) => {
      app.use(express.json());
      app.use(mw);
      app.post('/job', (req: Any, res: Any) => res.json({ got: req.body, type: req.fc.type }));
    });
    const json = { 'content-type': 'application/json' };
    const { taskId, headers } = asyncHeaders(json);
    const refused = await call(url, '/job', { method: 'POST', headers, body: '{"v":1}' });
    expect(refused.status).toBe(500);
    expect(JSON.parse(refused.text)).toEqual({
      code: 'BodyAlreadyRead',
      message: expect.stringMatching(/before body parsers/),
    });
    expect(refused.text).not.toMatch(/at .*\.js/);
    expect(await mw.tasks.get(taskId)).toBeUndefined();
    const sync = await call(url, '/job', { method: 'POST', headers: json, body: '{"v":1}' });
    expect(JSON.parse(sync.text)).toEqual({ got: { v: 1 }, type: 'Sync' });
  });

  it('express.json() before fcAsync, platform mode: BodyAlreadyRead is marked x-fc-status 404', async () => {
    const { url } = await start(
      (app, mw) => {
        app.use(express.json());
        app.use(mw);
        app.post('/job', (req: Any, res: Any) => res.json(req.body));
      },
      { env: ON_FC },
    );
    const { headers } = asyncHeaders({ 'content-type': 'application/json', 'x-fc-request-id': 'r-json' });
    const r = await call(url, '/job', { method: 'POST', headers, body: '{"v":1}' });
    expect([r.status, r.headers['x-fc-status'], JSON.parse(r.text).code]).toEqual([500, '404', 'BodyAlreadyRead']);
  });

  it('express.json() after fcAsync: the replay parses the queued body', async () => {
    const seen: unknown[] = [];
    const { url, mw } = await start((app, mw) => {
      app.use(mw);
      app.use(express.json());
      app.post('/job', (req: Any, res: Any) => {
        seen.push(req.body);
        res.json({ ok: true });
      });
    });
    const { taskId, headers } = asyncHeaders({ 'content-type': 'application/json' });
    expect((await call(url, '/job', { method: 'POST', headers, body: '{"v":"ü"}' })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(seen).toEqual([{ v: 'ü' }]);
  });

  it('multer after fcAsync gets the file byte-exact in the replay; multer before fcAsync is BodyAlreadyRead', async () => {
    const files: string[] = [];
    const upload = multer({ storage: multer.memoryStorage() });
    const { url, mw } = await start((app, mw) => {
      app.use('/early', upload.any());
      app.use(mw);
      const route = (req: Any, res: Any) => {
        files.push(sha256(req.files?.[0]?.buffer ?? req.file.buffer));
        res.json({ ok: true });
      };
      app.post('/upload', upload.single('file'), route);
      app.post('/early', route);
    });
    const file = randomBytes(64 * 1024);
    const form = multipart('a.bin', file);
    const { taskId, headers } = asyncHeaders({ 'content-type': form.type });
    expect((await call(url, '/upload', { method: 'POST', headers, body: form.body })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(files).toEqual([sha256(file)]);
    const early = await call(url, '/early', {
      method: 'POST',
      headers: asyncHeaders({ 'content-type': form.type }).headers,
      body: form.body,
    });
    expect([early.status, JSON.parse(early.text).code]).toEqual([500, 'BodyAlreadyRead']);
  });

  it('cookie-parser + express-session + helmet before fcAsync: headers on the 202, replay has no cookie, no secret recorded', async () => {
    const sessions: unknown[] = [];
    const { url, mw, records } = await start((app, mw) => {
      app.use(helmet());
      app.use(cookieParser());
      app.use(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false }));
      app.use(mw);
      app.post('/job', (req: Any, res: Any) => {
        sessions.push({ cookies: req.cookies, views: req.session.views, auth: req.headers.authorization });
        res.json({ ok: true });
      });
    });
    const { taskId, headers } = asyncHeaders({ cookie: SECRET_COOKIE, authorization: SECRET_AUTH });
    const accepted = await call(url, '/job', { method: 'POST', headers, body: 'x' });
    expect(accepted.status).toBe(202);
    expect(accepted.headers['x-content-type-options']).toBe('nosniff');
    expect(accepted.headers['content-security-policy']).toBeDefined();
    const task = await finished(mw, taskId);
    expect(task.status).toBe('Succeeded');
    expect(sessions).toEqual([{ cookies: {}, views: undefined, auth: undefined }]);
    const recorded = JSON.stringify([task, records]);
    expect(recorded).not.toContain('tok-secret-123');
    expect(recorded).not.toContain('sid-secret-456');
  });

  it('cors before fcAsync: preflight answered by cors, the 202 readable cross-origin; after fcAsync the 202 lacks it', async () => {
    const { url, mw } = await start((app, mw) => {
      app.use('/before', cors({ origin: 'https://app.example' }));
      app.use(mw);
      app.use(cors({ origin: 'https://app.example' }));
      app.post(['/before', '/after'], (_req: Any, res: Any) => res.json({ ok: true }));
    });
    const preflight = await call(url, '/before', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-fc-invocation-type',
        // Browsers never send it on a preflight; if a client does, cors in front still answers.
        'x-fc-invocation-type': 'Async',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
    const origin = { origin: 'https://app.example' };
    const before = asyncHeaders(origin);
    const b = await call(url, '/before', { method: 'POST', headers: before.headers, body: 'x' });
    expect([b.status, b.headers['access-control-allow-origin']]).toEqual([202, 'https://app.example']);
    const after = asyncHeaders(origin);
    const a = await call(url, '/after', { method: 'POST', headers: after.headers, body: 'x' });
    expect([a.status, a.headers['access-control-allow-origin']]).toEqual([202, undefined]);
    expect((await finished(mw, after.taskId)).status).toBe('Succeeded');
  });

  it('morgan before fcAsync logs the 202 and the replay', async () => {
    const lines: string[] = [];
    const stream = { write: (line: string) => void lines.push(line.trim()) };
    const { url, mw } = await start((app, mw) => {
      app.use(morgan(':method :url :status', { stream }));
      app.use(mw);
      app.post('/job', (_req: Any, res: Any) => res.status(201).json({ ok: true }));
    });
    const { taskId, headers } = asyncHeaders({ authorization: SECRET_AUTH });
    await call(url, '/job?x=1', { method: 'POST', headers, body: 'x' });
    await finished(mw, taskId);
    expect(lines).toEqual(['POST /job?x=1 202', 'POST /job?x=1 201']);
  });

  it('a rate limiter in front counts the replay too: skip replays by their source (docs/deploy.md)', async () => {
    const build = (skip: boolean) =>
      start((app, mw) => {
        app.use(
          rateLimit({
            windowMs: 60_000,
            limit: 1,
            skip: (req: Any) => skip && getInvocation(req)?.source === 'local-queue',
          }),
        );
        app.use(mw);
        app.post('/job', (_req: Any, res: Any) => res.json({ ok: true }));
      });
    const naive = await build(false);
    const first = asyncHeaders();
    expect((await call(naive.url, '/job', { method: 'POST', headers: first.headers, body: 'x' })).status).toBe(202);
    // The replay is the limiter's second request: answered 429, which is not a failure.
    expect(await finished(naive.mw, first.taskId)).toMatchObject({
      status: 'Succeeded',
      returnPayload: expect.stringMatching(/Too many/),
    });
    const skipping = await build(true);
    const second = asyncHeaders();
    expect((await call(skipping.url, '/job', { method: 'POST', headers: second.headers, body: 'x' })).status).toBe(202);
    expect(await finished(skipping.mw, second.taskId)).toMatchObject({
      status: 'Succeeded',
      returnPayload: '{"ok":true}',
    });
    const third = asyncHeaders();
    expect((await call(skipping.url, '/job', { method: 'POST', headers: third.headers, body: 'x' })).status).toBe(429);
  });

  it('platform mode: middleware in front of fcAsync runs on the request and again on the collected run, behind it once', async () => {
    const front: string[] = [];
    const behind: string[] = [];
    const { url, records } = await start(
      (app, mw) => {
        app.use(morgan(':method :url :status', { stream: { write: (l: string) => void front.push(l.trim()) } }));
        app.use(mw);
        app.use(morgan(':method :url :status', { stream: { write: (l: string) => void behind.push(l.trim()) } }));
        app.post('/job', (_req: Any, res: Any) => res.status(201).json({ ok: true }));
      },
      { env: ON_FC },
    );
    const { headers } = asyncHeaders({ 'x-fc-request-id': 'm1', authorization: SECRET_AUTH, cookie: SECRET_COOKIE });
    expect((await call(url, '/job', { method: 'POST', headers, body: 'x' })).status).toBe(201);
    expect(front).toEqual(['POST /job 201', 'POST /job 201']);
    expect(behind).toEqual(['POST /job 201']);
    expect(records).toHaveLength(1);
    expect(JSON.stringify(records)).not.toMatch(/tok-secret-123|sid-secret-456/);
  });

  it('in front of fcAsync, getInvocation(req) is set only on the runs fc-async makes (local replays, platform collection)', async () => {
    for (const env of [undefined, ON_FC]) {
      const counted: string[] = [];
      const { url, mw } = await start(
        (app, mw) => {
          app.use((req: Any, _res: Any, next: Any) => {
            if (getInvocation(req) === undefined) counted.push(req.url);
            next();
          });
          app.use(mw);
          app.post('/job', (_req: Any, res: Any) => res.status(201).json({ ok: true }));
        },
        env ? { env } : {},
      );
      const { taskId, headers } = asyncHeaders({ 'x-fc-request-id': env ? 'g1' : 'g2' });
      await call(url, '/job', { method: 'POST', headers, body: 'x' });
      if (!env) await finished(mw, taskId);
      expect(counted).toEqual(['/job']);
    }
  });

  it('a global error handler: a throwing replay is retried and fails with the handler’s answer, no stack recorded', async () => {
    let attempts = 0;
    const { url, mw, records } = await start(
      (app, mw) => {
        app.use(mw);
        app.post('/boom', () => {
          attempts++;
          throw new Error('kaboom');
        });
        app.use((error: Error, _req: Any, res: Any, _next: Any) =>
          res.status(500).json({ code: 'Oops', message: error.message }),
        );
      },
      { async: { maxAsyncRetryAttempts: 1 } },
    );
    const { taskId, headers } = asyncHeaders();
    expect((await call(url, '/boom', { method: 'POST', headers, body: 'x' })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Failed');
    expect(attempts).toBe(2);
    expect(records[0]?.requestContext.condition).toBe('UnhandledInvocationError');
    expect(JSON.stringify(records)).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('without an error handler, a throwing replay fails the attempt; no stack in the task or the record', async () => {
    const { url, mw, records } = await start((app, mw) => {
      app.use(mw);
      app.post('/boom', () => {
        throw new Error('kaboom');
      });
    });
    const { taskId, headers } = asyncHeaders();
    await call(url, '/boom', { method: 'POST', headers, body: 'x' });
    const task = await finished(mw, taskId);
    expect(task.status).toBe('Failed');
    expect(JSON.stringify([task, records])).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('fcAsync inside a router and a sub-app mounted at a prefix: replayed with the full URL', async () => {
    const seen: { url: string; fc: Invocation | undefined }[] = [];
    const { opts } = options();
    const app = express();
    const router = express.Router();
    const mw = expressFcAsync(opts);
    router.use(mw);
    router.post('/job', (req: Any, res: Any) => {
      seen.push({ url: req.originalUrl, fc: getInvocation(req) });
      res.json({ ok: true });
    });
    app.use('/api', router);
    const url = await served(listenExpress(app, quiet));
    const { taskId, headers } = asyncHeaders();
    expect((await call(url, '/api/job?q=1', { method: 'POST', headers, body: 'x' })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(seen).toEqual([
      { url: '/api/job?q=1', fc: expect.objectContaining({ type: 'Async', source: 'local-queue' }) },
    ]);

    const { opts: subOpts } = options();
    const root = express();
    const sub = express();
    const subMw = expressFcAsync(subOpts);
    sub.use(subMw);
    sub.post('/job', (req: Any, res: Any) => {
      seen.push({ url: req.originalUrl, fc: getInvocation(req) });
      res.json({ ok: true });
    });
    root.use('/v1', sub);
    const subUrl = await served(listenExpress(root, quiet));
    const second = asyncHeaders();
    expect((await call(subUrl, '/v1/job', { method: 'POST', headers: second.headers, body: 'x' })).status).toBe(202);
    expect((await finished(subMw, second.taskId)).status).toBe('Succeeded');
    expect(seen[1]).toEqual({ url: '/v1/job', fc: expect.objectContaining({ type: 'Async', source: 'local-queue' }) });
  });

  it('platform mode: a replay-free run through the middleware, a 5xx marked, a sync 500 not', async () => {
    const { url } = await start(
      (app, mw) => {
        app.use(helmet());
        app.use(mw);
        app.use(express.json());
        app.post('/job', (req: Any, res: Any) => res.status(req.body.fail ? 503 : 200).json({ fc: req.fc.type }));
      },
      { env: ON_FC },
    );
    const json = { 'content-type': 'application/json', 'x-fc-request-id': 'p1' };
    const ok = await call(url, '/job', { method: 'POST', headers: asyncHeaders(json).headers, body: '{"fail":false}' });
    expect([ok.status, ok.headers['x-fc-status'], JSON.parse(ok.text)]).toEqual([200, undefined, { fc: 'Async' }]);
    expect(ok.headers['x-content-type-options']).toBe('nosniff');
    const bad = await call(url, '/job', { method: 'POST', headers: asyncHeaders(json).headers, body: '{"fail":true}' });
    expect([bad.status, bad.headers['x-fc-status']]).toEqual([503, '404']);
    const sync = await call(url, '/job', { method: 'POST', headers: json, body: '{"fail":true}' });
    expect([sync.status, sync.headers['x-fc-status']]).toEqual([503, undefined]);
  });
});

describe.each([
  { name: 'Koa 2', Koa: koa2 as Any },
  { name: 'Koa 3', Koa: koa3 as Any },
])('$name custom runtime among real middleware', ({ Koa }) => {
  async function start(setup: (app: Any, mw: Any) => void, extra: FcRuntimeOptions = {}) {
    const { opts, records } = options(extra);
    const app = new Koa();
    app.silent = true;
    const mw = koaFcAsync(opts);
    setup(app, mw);
    const url = await served(listenKoa(app, quiet));
    return { url, mw, records };
  }

  it('koa-compress before fcAsync: an intact 202, the replay recorded decoded, platform mode gzipped once', async () => {
    const routes = (app: Any, mw: Any) => {
      app.use(koaCompress({ threshold: 0 }));
      app.use(mw);
      app.use((ctx: Any) => {
        ctx.status = ctx.path === '/fail' ? 500 : 200;
        ctx.body = ctx.path === '/fail' ? { code: 'Broken' } : BIG;
      });
    };
    const { url, mw, records } = await start(routes);
    const { taskId, headers } = asyncHeaders({ 'accept-encoding': 'gzip' });
    const accepted = await call(url, '/big', { headers });
    expect([accepted.status, accepted.body.length, accepted.headers['x-fc-async-task-id']]).toEqual([202, 0, taskId]);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(records[0]?.responsePayload).toBe(BIG_TEXT);

    const platform = await start(routes, { env: ON_FC });
    const headersFc = { ...asyncHeaders({ 'accept-encoding': 'gzip' }).headers, 'x-fc-request-id': 'k1' };
    const ok = await call(platform.url, '/big', { headers: headersFc });
    expect([ok.status, ok.headers['content-encoding'], ok.headers['x-fc-status']]).toEqual([200, 'gzip', undefined]);
    expect(gunzipSync(ok.body).toString()).toBe(BIG_TEXT);
    const failed = await call(platform.url, '/fail', { headers: { ...headersFc, 'x-fc-request-id': 'k2' } });
    expect([failed.status, failed.headers['x-fc-status']]).toEqual([500, '404']);
    expect(JSON.parse(gunzipSync(failed.body).toString())).toEqual({ code: 'Broken' });
  });

  it('koa-static after fcAsync: an async GET of a file is 202, then the replay reads the file', async () => {
    const { url, mw, records } = await start((app, mw) => {
      app.use(mw);
      app.use(koaStatic(dir));
    });
    const { taskId, headers } = asyncHeaders();
    expect((await call(url, '/hello.txt', { headers })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect([records[0]?.responseContext.statusCode, records[0]?.responsePayload]).toEqual([200, HELLO]);
  });

  it('@koa/bodyparser before fcAsync is a clear 500 BodyAlreadyRead; after it the replay parses the body', async () => {
    const seen: unknown[] = [];
    const { url, mw } = await start((app, mw) => {
      app.use(async (ctx: Any, next: Any) => (ctx.path === '/early' ? bodyParser()(ctx, next) : next()));
      app.use(mw);
      app.use(bodyParser());
      app.use((ctx: Any) => {
        seen.push(ctx.request.body);
        ctx.body = { ok: true };
      });
    });
    const json = { 'content-type': 'application/json' };
    const early = await call(url, '/early', { method: 'POST', headers: asyncHeaders(json).headers, body: '{"v":1}' });
    expect([early.status, JSON.parse(early.text).code]).toEqual([500, 'BodyAlreadyRead']);
    expect(early.text).not.toMatch(/at .*\.js/);
    const { taskId, headers } = asyncHeaders(json);
    expect((await call(url, '/late', { method: 'POST', headers, body: '{"v":2}' })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(seen).toEqual([{ v: 2 }]);
  });

  it('a 404 fallback and a deferred koa-static in front see the 202 as answered; the replays get their answers', async () => {
    const statuses: number[] = [];
    const { url, mw, records } = await start((app, mw) => {
      app.use(async (ctx: Any, next: Any) => {
        await next();
        statuses.push(ctx.status);
        if (ctx.status !== 404) return;
        ctx.status = 404;
        ctx.body = { code: 'NotFound' };
      });
      app.use(koaStatic(dir, { defer: true }));
      app.use(mw);
    });
    for (const path of ['/hello.txt', '/none']) {
      const { taskId, headers } = asyncHeaders();
      const accepted = await call(url, path, { headers });
      expect([accepted.status, accepted.body.length, accepted.headers['x-fc-async-task-id']]).toEqual([202, 0, taskId]);
      expect((await finished(mw, taskId)).status).toBe('Succeeded');
    }
    expect(records.map((r) => [r.responseContext.statusCode, r.responsePayload])).toEqual([
      [200, HELLO],
      [404, '{"code":"NotFound"}'],
    ]);
    expect(statuses).toEqual([202, 200, 202, 404]);
  });

  it('an error-handling middleware in front: a throwing replay is retried, then fails; without one, no stack recorded', async () => {
    let attempts = 0;
    const { url, mw, records } = await start(
      (app, mw) => {
        app.use(async (ctx: Any, next: Any) => {
          try {
            await next();
          } catch (error) {
            ctx.status = 500;
            ctx.body = { code: 'Oops', message: (error as Error).message };
          }
        });
        app.use(mw);
        app.use(() => {
          attempts++;
          throw new Error('kaboom');
        });
      },
      { async: { maxAsyncRetryAttempts: 1 } },
    );
    const { taskId, headers } = asyncHeaders();
    expect((await call(url, '/boom', { method: 'POST', headers, body: 'x' })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Failed');
    expect(attempts).toBe(2);
    expect(records[0]?.requestContext.condition).toBe('UnhandledInvocationError');
    expect(JSON.stringify(records)).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('fcAsync on a prefixed @koa/router and an auth check in front letting replays through', async () => {
    const seen: Invocation[] = [];
    const { url, mw } = await start((app, mw) => {
      app.use(async (ctx: Any, next: Any) => {
        if (ctx.get('authorization') === SECRET_AUTH || getInvocation(ctx)?.source === 'local-queue') return next();
        ctx.status = 401;
        ctx.body = { code: 'Unauthorized' };
      });
      const router = new Router({ prefix: '/api' });
      router.use(mw);
      router.post('/job', (ctx: Any) => {
        seen.push(ctx.fc);
        ctx.body = { ok: true };
      });
      app.use(router.routes());
    });
    const denied = await call(url, '/api/job', { method: 'POST', headers: asyncHeaders().headers, body: 'x' });
    expect(denied.status).toBe(401);
    const { taskId, headers } = asyncHeaders({ authorization: SECRET_AUTH });
    expect((await call(url, '/api/job?q=1', { method: 'POST', headers, body: 'x' })).status).toBe(202);
    const task = await finished(mw, taskId);
    expect(task.status).toBe('Succeeded');
    expect(seen).toEqual([expect.objectContaining({ type: 'Async', source: 'local-queue' })]);
    expect(JSON.stringify(task)).not.toContain('tok-secret-123');
  });
});

describe('Fastify 5 custom runtime among real plugins and hooks', () => {
  async function start(
    setup: (app: Any) => Promise<void>,
    extra: FcRuntimeOptions = {},
    before?: (app: Any) => Promise<void>,
  ) {
    const { opts, records } = options(extra);
    const app = (fastify5 as Any)();
    await before?.(app);
    await app.register(fastifyFcAsync, opts);
    await setup(app);
    const url = await served(listenFastify(app, quiet));
    return { url, mw: app.fcAsync, records };
  }

  it('an onRequest auth hook before the plugin: 401 before queueing, replays let through by their source', async () => {
    const seen: Invocation[] = [];
    const { url, mw } = await start(
      async (app) => {
        app.post('/job', async (request: Any) => {
          seen.push(request.fc);
          return { ok: true };
        });
      },
      {},
      async (app) => {
        app.addHook('onRequest', async (request: Any, reply: Any) => {
          if (request.headers.authorization === SECRET_AUTH) return;
          if (getInvocation(request.raw)?.source === 'local-queue') return;
          return reply.code(401).send({ code: 'Unauthorized' });
        });
      },
    );
    const denied = asyncHeaders();
    expect((await call(url, '/job', { method: 'POST', headers: denied.headers, body: 'x' })).status).toBe(401);
    expect(await mw.tasks.get(denied.taskId)).toBeUndefined();
    const { taskId, headers } = asyncHeaders({ authorization: SECRET_AUTH, 'content-type': 'text/plain' });
    expect((await call(url, '/job', { method: 'POST', headers, body: 'x' })).status).toBe(202);
    const task = await finished(mw, taskId);
    expect(task.status).toBe('Succeeded');
    expect(seen).toEqual([expect.objectContaining({ type: 'Async', source: 'local-queue' })]);
    expect(JSON.stringify(task)).not.toContain('tok-secret-123');
  });

  it('@fastify/compress: an intact 202, the replay recorded decoded, platform mode gzipped once and marked', async () => {
    const routes = async (app: Any) => {
      await app.register(fastifyCompress, { threshold: 0 });
      app.get('/big', async () => BIG);
      app.get('/fail', async (_request: Any, reply: Any) => reply.code(500).send({ code: 'Broken' }));
    };
    const { url, mw, records } = await start(routes);
    const { taskId, headers } = asyncHeaders({ 'accept-encoding': 'gzip' });
    const accepted = await call(url, '/big', { headers });
    expect([accepted.status, accepted.body.length]).toEqual([202, 0]);
    expect((await finished(mw, taskId)).status).toBe('Succeeded');
    expect(records[0]?.responsePayload).toBe(BIG_TEXT);

    const platform = await start(routes, { env: ON_FC });
    const fcHeaders = { ...asyncHeaders({ 'accept-encoding': 'gzip' }).headers, 'x-fc-request-id': 'f1' };
    const ok = await call(platform.url, '/big', { headers: fcHeaders });
    expect([ok.status, ok.headers['content-encoding'], ok.headers['x-fc-status']]).toEqual([200, 'gzip', undefined]);
    expect(gunzipSync(ok.body).toString()).toBe(BIG_TEXT);
    const failed = await call(platform.url, '/fail', { headers: { ...fcHeaders, 'x-fc-request-id': 'f2' } });
    expect([failed.status, failed.headers['x-fc-status']]).toEqual([500, '404']);
    expect(JSON.parse(gunzipSync(failed.body).toString())).toEqual({ code: 'Broken' });
  });

  it('@fastify/static and @fastify/multipart in a prefixed plugin: 202, then the replay serves the file and gets the upload', async () => {
    const uploads: string[] = [];
    const { url, mw, records } = await start(async (app) => {
      await app.register(
        async (child: Any) => {
          await child.register(fastifyStatic, { root: dir, prefix: '/files/' });
          await child.register(fastifyMultipart);
          child.post('/upload', async (request: Any) => {
            const file = await request.file();
            uploads.push(sha256(await file.toBuffer()));
            return { ok: true };
          });
        },
        { prefix: '/api' },
      );
    });
    const get = asyncHeaders();
    expect((await call(url, '/api/files/hello.txt', { headers: get.headers })).status).toBe(202);
    expect((await finished(mw, get.taskId)).status).toBe('Succeeded');
    expect([records[0]?.responseContext.statusCode, records[0]?.responsePayload]).toEqual([200, HELLO]);
    const file = randomBytes(64 * 1024);
    const form = multipart('a.bin', file);
    const post = asyncHeaders({ 'content-type': form.type });
    expect((await call(url, '/api/upload', { method: 'POST', headers: post.headers, body: form.body })).status).toBe(
      202,
    );
    expect((await finished(mw, post.taskId)).status).toBe('Succeeded');
    expect(uploads).toEqual([sha256(file)]);
  });

  it('@fastify/cors before the plugin: preflight answered, its headers on the 202; after the plugin they are not', async () => {
    const routes = async (app: Any) => {
      app.post('/job', async () => ({ ok: true }));
    };
    const corsFirst = (app: Any) => app.register(fastifyCors, { origin: 'https://app.example' });
    const before = await start(routes, {}, corsFirst);
    const preflight = await call(before.url, '/job', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'x-fc-invocation-type': 'Async',
      },
    });
    expect([preflight.status, preflight.headers['access-control-allow-origin']]).toEqual([204, 'https://app.example']);
    const origin = { origin: 'https://app.example', 'content-type': 'text/plain' };
    const a = asyncHeaders(origin);
    const accepted = await call(before.url, '/job', { method: 'POST', headers: a.headers, body: 'x' });
    expect([accepted.status, accepted.headers['access-control-allow-origin']]).toEqual([202, 'https://app.example']);
    expect((await finished(before.mw, a.taskId)).status).toBe('Succeeded');
    const after = await start(async (app) => {
      await app.register(fastifyCors, { origin: 'https://app.example' });
      await routes(app);
    });
    const late = await call(after.url, '/job', { method: 'POST', headers: asyncHeaders(origin).headers, body: 'x' });
    expect([late.status, late.headers['access-control-allow-origin']]).toEqual([202, undefined]);
  });

  it('an error handler of its own: a throwing replay is retried, then fails, no stack recorded', async () => {
    let attempts = 0;
    const { url, mw, records } = await start(
      async (app) => {
        app.setErrorHandler(async (error: Error, _request: Any, reply: Any) =>
          reply.code(500).send({ code: 'Oops', message: error.message }),
        );
        app.post('/boom', async () => {
          attempts++;
          throw new Error('kaboom');
        });
      },
      { async: { maxAsyncRetryAttempts: 1 } },
    );
    const { taskId, headers } = asyncHeaders({ 'content-type': 'text/plain' });
    expect((await call(url, '/boom', { method: 'POST', headers, body: 'x' })).status).toBe(202);
    expect((await finished(mw, taskId)).status).toBe('Failed');
    expect(attempts).toBe(2);
    expect(JSON.stringify(records)).not.toMatch(/at .*\.(js|ts):\d+/);
  });
});
