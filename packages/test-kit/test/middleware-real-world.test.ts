/**
 * The middleware real apps carry (multer, compression, helmet, sessions, static files, CORS, rate
 * limits, morgan, body parsers; their Koa and Fastify counterparts), run unchanged through the
 * public adapters, sync and async (the accepted request replayed through the same bridge).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import fastifyCompress from '@fastify/compress';
import fastifyCookie from '@fastify/cookie';
import fastifyCors from '@fastify/cors';
import fastifyFormbody from '@fastify/formbody';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import {
  type AsyncTask,
  createFcHandler,
  type DestinationRecord,
  type FcHandler,
  type FcHandlerOptions,
  type FcHttpEvent,
  type FcHttpEventInit,
  type FcHttpResult,
  fcHttpEvent,
} from '@fc-async/core';
import { createHandler as createExpressHandler } from '@fc-async/express';
import { createHandler as createFastifyHandler } from '@fc-async/fastify';
import { createHandler as createKoaHandler } from '@fc-async/koa';
import { bodyParser } from '@koa/bodyparser';
import koaMulter from '@koa/multer';
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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fc2Call, fcContext, fixtureRequestId, fromFc3Result, type Reply, recordingLogger } from '../src/index.js';
import { bounded } from './bounded.js';

// ---------------------------------------------------------------------------------------------
// Fixtures: files on disk, bodies, and a harness that bounds every invocation.

const dir = mkdtempSync(join(tmpdir(), 'fc-async-mw-'));
const PHOTO = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200 * 1024)]);
const REPORT = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(32 * 1024)]);
writeFileSync(join(dir, 'photo.png'), PHOTO);
writeFileSync(join(dir, 'report.pdf'), REPORT);
writeFileSync(join(dir, 'hello.txt'), 'hello from disk ✓\n');
const BIG_JSON = { items: Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'] })) };
const SECRET_AUTH = 'Bearer tok-secret-123';
const SECRET_COOKIE = 'connect.sid=sid-secret-456';

const open: FcHandler[] = [];
afterAll(async () => {
  for (const handler of open.splice(0)) await handler.close({ timeoutMs: 2_000 });
  rmSync(dir, { recursive: true, force: true });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A multipart/form-data body as browsers send it. */
function multipart(parts: { name: string; value: string | Buffer; filename?: string; type?: string }[]) {
  const boundary = `----fcasync${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.type !== undefined) head += `Content-Type: ${part.type}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), Buffer.from(part.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

type Result = Reply & { raw: FcHttpResult };

interface AsyncResult {
  accepted: Result;
  task: AsyncTask;
  record: DestinationRecord;
}

let taskCounter = 0;

/** A handler built with a recording logger and destinations, in local async mode, no retries. */
function harness(create: (options: FcHandlerOptions) => FcHandler) {
  const logger = recordingLogger();
  const records: DestinationRecord[] = [];
  const handler = create({
    logger,
    env: {},
    async: { maxAsyncRetryAttempts: 0 },
    destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
  });
  open.push(handler);

  /** One FC 3.0 invocation; `event` overrides the event built from `init`. */
  async function call(init: FcHttpEventInit, event?: FcHttpEvent): Promise<Result> {
    const requestId = fixtureRequestId();
    const e = event ?? fcHttpEvent({ ...init, requestId });
    const raw = await bounded(
      handler(e, fcContext(e.requestContext?.requestId ?? requestId)),
      `${init.method ?? 'GET'} ${init.url}`,
    );
    return Object.assign(fromFc3Result(raw), { raw });
  }

  /** An async invocation: the 202, then the replay run to its end. */
  async function callAsync(init: FcHttpEventInit): Promise<AsyncResult> {
    const taskId = `mw_${++taskCounter}`;
    const headers = { ...init.headers, 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId };
    const accepted = await call({ ...init, headers });
    expect(accepted.status).toBe(202);
    await bounded(handler.drain(), `the replay of ${taskId}`);
    const task = (await handler.tasks.get(taskId)) as AsyncTask;
    const record = records.find((r) => r.requestContext.requestId === task.requestId) as DestinationRecord;
    expect(record).toBeDefined();
    return { accepted, task, record };
  }

  /** One FC 2.0 invocation, the body coming through the request stream. */
  async function callFc2(init: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer }) {
    const { req, resp, done } = fc2Call(init);
    await bounded(handler(req, resp, fcContext()), `FC 2.0 ${init.path}`);
    return bounded(done, `FC 2.0 ${init.path} response`);
  }

  return { handler, logger, records, call, callAsync, callFc2 };
}

/** The secrets an async request carried must be in no task record nor destination record. */
function expectNoSecrets(result: AsyncResult): void {
  const stored = JSON.stringify(result.task) + JSON.stringify(result.record);
  expect(stored).not.toContain('tok-secret-123');
  expect(stored).not.toContain('sid-secret-456');
  expect(JSON.parse(result.task.taskPayload as string).headers).not.toHaveProperty('cookie');
}

function expectGeneric500(r: Result, secret: string): void {
  expect(r.status).toBe(500);
  expect(r.json()).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
  expect(r.text()).not.toContain(secret);
}

/** Every case variant of Set-Cookie in an FC 3.0 result: one per cookie, none folded. */
function setCookieNames(raw: FcHttpResult): string[] {
  return Object.keys(raw.headers).filter((n) => n.toLowerCase() === 'set-cookie');
}

describe('response end events', () => {
  // morgan, express-session's touch, metrics and on-finished cleanup run on 'finish': they must
  // have run when the handler returns (FC may freeze the instance then; tests look then).
  const events: string[] = [];
  const h = harness((options) =>
    createFcHandler(async (req, res) => {
      res.on('finish', () => events.push(`finish ${req.url}`));
      res.on('close', () => events.push(`close ${req.url}`));
      if (req.url === '/later') await new Promise((resolve) => setImmediate(resolve));
      res.end('ok');
    }, options),
  );

  it.each(['/now', '/later'])('%s: finish and close listeners have run when the handler returns', async (url) => {
    const r = await h.call({ url });
    expect(r.text()).toBe('ok');
    expect(events.splice(0)).toEqual([`finish ${url}`, `close ${url}`]);
  });

  it('and before the async replay counts as done', async () => {
    await h.callAsync({ url: '/later' });
    expect(events.splice(0)).toEqual(['finish /later', 'close /later']);
  });
});

// ---------------------------------------------------------------------------------------------
// Express 4 and 5

interface ExpressSeen {
  uploads: { bytes: Buffer | undefined; name?: string; fields: unknown; type?: string }[];
  jobs: { user: unknown; cookie: string | null; type?: string }[];
  logLines: string[];
}

// biome-ignore lint/suspicious/noExplicitAny: both Express majors share one set of typings
function expressRealWorld(express: any, seen: ExpressSeen) {
  const app = express();
  app.set('trust proxy', true);
  app.use(
    morgan(':remote-addr :method :url :status :res[content-type] :response-time ms', {
      stream: { write: (line: string) => void seen.logLines.push(line) },
    }),
  );
  app.use(helmet());
  app.use(cors({ origin: 'https://app.example.com', credentials: true, methods: ['GET', 'POST', 'DELETE'] }));
  app.use(compression({ threshold: 0 }));
  app.use(cookieParser('cookie-secret'));
  app.use(
    session({
      secret: 'session-secret',
      resave: false,
      saveUninitialized: false,
      store: new session.MemoryStore(),
      cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax' },
    }),
  );
  app.use('/static', express.static(dir));

  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: 300 * 1024 } });
  app.post('/upload', upload.single('file'), (req: express5.Request, res: express5.Response) => {
    seen.uploads.push({ bytes: req.file?.buffer, name: req.file?.originalname, fields: req.body, type: req.fc?.type });
    res.json({
      name: req.file?.originalname,
      mimetype: req.file?.mimetype,
      size: req.file?.size,
      sha256: req.file ? sha256(req.file.buffer) : null,
      fields: { ...req.body },
    });
  });
  app.post('/login', express.json(), (req: express5.Request, res: express5.Response) => {
    (req.session as unknown as Record<string, unknown>).user = req.body.user;
    res.cookie('theme', 'dark');
    res.cookie('remember', 'yes', { signed: true, maxAge: 60_000 });
    res.json({ ok: true });
  });
  app.get('/me', (req: express5.Request, res: express5.Response) => {
    res.json({
      user: (req.session as unknown as Record<string, unknown>).user ?? null,
      theme: req.cookies.theme ?? null,
      remember: req.signedCookies.remember ?? null,
    });
  });
  app.post('/jobs', (req: express5.Request, res: express5.Response) => {
    const user = (req.session as unknown as Record<string, unknown>).user ?? null;
    seen.jobs.push({ user, cookie: req.headers.cookie ?? null, type: req.fc?.type });
    res.status(user ? 200 : 401).json({ user });
  });
  app.get('/big', (_req: express5.Request, res: express5.Response) => res.json(BIG_JSON));
  app.get('/chunks', (_req: express5.Request, res: express5.Response) => {
    res.type('text/plain');
    let i = 0;
    const next = () => {
      if (i === 50) return res.end('end\n');
      res.write(`line ${i++} ${'x'.repeat(100)}\n`);
      setImmediate(next);
    };
    next();
  });
  app.get('/report', (_req: express5.Request, res: express5.Response) => res.sendFile(join(dir, 'report.pdf')));
  app.get('/download', (_req: express5.Request, res: express5.Response) =>
    res.download(join(dir, 'report.pdf'), 'Q3 report.pdf'),
  );
  app.get('/missing-file', (_req: express5.Request, res: express5.Response) => res.sendFile(join(dir, 'nope.pdf')));
  app.use(
    '/limited',
    rateLimit({
      windowMs: 60_000,
      limit: 2,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      validate: { trustProxy: false },
    }),
  );
  app.get('/limited', (_req: express5.Request, res: express5.Response) => res.json({ ok: true }));
  app.post(
    '/raw',
    express.raw({ type: 'application/octet-stream', limit: '8mb' }),
    (req: express5.Request, res: express5.Response) =>
      res.json({ bytes: (req.body as Buffer).length, sha256: sha256(req.body as Buffer) }),
  );
  app.post('/text', express.text({ type: 'text/plain' }), (req: express5.Request, res: express5.Response) =>
    res.json({ text: req.body }),
  );
  app.post('/json', express.json(), (req: express5.Request, res: express5.Response) =>
    res.json({ received: req.body }),
  );
  app.get('/boom', () => {
    throw new Error('express-secret-boom');
  });
  return app;
}

describe.each([
  ['express 4', express4],
  ['express 5', express5],
] as const)('%s with real middleware', (_name, express) => {
  const seen: ExpressSeen = { uploads: [], jobs: [], logLines: [] };
  const h = harness((options) => createExpressHandler(expressRealWorld(express, seen), options));

  it('multer: a multipart upload arrives byte-exact with its fields (FC 3.0 and FC 2.0)', async () => {
    const file = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(100 * 1024)]);
    const form = multipart([
      { name: 'title', value: 'holiday ✓' },
      { name: 'file', value: file, filename: 'pic.bin', type: 'application/octet-stream' },
    ]);
    const expected = {
      name: 'pic.bin',
      mimetype: 'application/octet-stream',
      size: file.length,
      sha256: sha256(file),
      fields: { title: 'holiday ✓' },
    };
    const r = await h.call({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': form.contentType },
      body: form.body,
    });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual(expected);
    expect(seen.uploads.at(-1)?.bytes?.equals(file)).toBe(true);

    const r2 = await h.callFc2({
      method: 'POST',
      path: '/upload',
      headers: { 'content-type': form.contentType },
      body: form.body,
    });
    expect(r2.status).toBe(200);
    expect(r2.json()).toEqual(expected);
  });

  it('multer async: the upload accepted with a 202 is processed in the replay with the file intact', async () => {
    const file = randomBytes(20 * 1024);
    const form = multipart([{ name: 'file', value: file, filename: 'async.bin', type: 'image/jpeg' }]);
    const before = seen.uploads.length;
    const result = await h.callAsync({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': form.contentType, authorization: SECRET_AUTH, cookie: SECRET_COOKIE },
      body: form.body,
    });
    expect(seen.uploads.length).toBe(before + 1);
    const upload = seen.uploads.at(-1);
    expect(upload?.type).toBe('Async');
    expect(upload?.bytes?.equals(file)).toBe(true);
    expect(result.task.status).toBe('Succeeded');
    expect(result.record.responseContext.statusCode).toBe(200);
    expect(JSON.parse(result.record.responsePayload)).toMatchObject({ size: file.length, sha256: sha256(file) });
    const payload = JSON.parse(result.task.taskPayload as string);
    expect(payload.isBase64Encoded).toBe(true);
    expect(Buffer.from(payload.body, 'base64').equals(form.body)).toBe(true);
    expectNoSecrets(result);
  });

  it('multer: a truncated multipart body and a file over the limit are generic 500s, without hanging', async () => {
    const form = multipart([{ name: 'file', value: randomBytes(1024), filename: 'a.bin' }]);
    const truncated = await h.call({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': form.contentType },
      body: form.body.subarray(0, form.body.length - 30),
    });
    // multer's and busboy's errors carry no status: Express itself would answer 500 too.
    expectGeneric500(truncated, 'Unexpected end of form');
    const big = multipart([{ name: 'file', value: randomBytes(301 * 1024), filename: 'big.bin' }]);
    const tooBig = await h.call({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': big.contentType },
      body: big.body,
    });
    expectGeneric500(tooBig, 'File too large');
    expect(h.logger.text()).toContain('MulterError: File too large');
  });

  it('compression: gzip and brotli bodies come back compressed, base64, byte-exact', async () => {
    const gz = await h.call({ url: '/big', headers: { 'accept-encoding': 'gzip' } });
    expect(gz.status).toBe(200);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toMatch(/accept-encoding/i);
    expect(gz.raw.isBase64Encoded).toBe(true);
    expect(JSON.parse(gunzipSync(gz.body).toString('utf8'))).toEqual(BIG_JSON);
    expect(gz.body.length).toBeLessThan(JSON.stringify(BIG_JSON).length / 4);

    const br = await h.call({ url: '/big', headers: { 'accept-encoding': 'br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(JSON.parse(brotliDecompressSync(br.body).toString('utf8'))).toEqual(BIG_JSON);

    const plain = await h.call({ url: '/big' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.raw.isBase64Encoded).toBe(false);
    expect(plain.json()).toEqual(BIG_JSON);
  });

  it('compression of a response written in chunks over many ticks', async () => {
    const expected = `${Array.from({ length: 50 }, (_, i) => `line ${i} ${'x'.repeat(100)}\n`).join('')}end\n`;
    const r = await h.call({ url: '/chunks', headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(r.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(r.body).toString('utf8')).toBe(expected);
    const fc2 = await h.callFc2({ path: '/chunks', headers: { 'accept-encoding': 'gzip' } });
    expect(fc2.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(fc2.body).toString('utf8')).toBe(expected);
  });

  it('compression async: the replayed response, gzipped by the middleware, is recorded decoded', async () => {
    const result = await h.callAsync({ url: '/big', headers: { 'accept-encoding': 'gzip' } });
    expect(result.record.responseContext.statusCode).toBe(200);
    expect(JSON.parse(result.record.responsePayload)).toEqual(BIG_JSON);
  });

  it('helmet: its headers all reach FC, and X-Powered-By is gone', async () => {
    const r = await h.call({ url: '/me' });
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(r.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(r.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['x-dns-prefetch-control']).toBe('off');
    expect(r.headers).not.toHaveProperty('x-powered-by');
  });

  it('cookie-parser + express-session: three Set-Cookie, none folded, and the session round-trips', async () => {
    const login = await h.call({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: { user: 'ada' },
    });
    expect(login.status).toBe(200);
    expect(setCookieNames(login.raw)).toHaveLength(3);
    const byName = Object.fromEntries(login.cookies.map((c) => [c.split('=')[0], c]));
    expect(Object.keys(byName).sort()).toEqual(['connect.sid', 'remember', 'theme']);
    expect(byName['connect.sid']).toMatch(/; HttpOnly/i);
    expect(byName['connect.sid']).toMatch(/; Secure/i); // secure: 'auto' behind the proxy's https
    expect(byName['connect.sid']).toMatch(/; SameSite=Lax/i);
    expect(byName.remember).toMatch(/^remember=s%3Ayes\./);
    expect(byName.remember).toMatch(/Expires=/);

    const cookie = login.cookies.map((c) => c.split(';')[0]).join('; ');
    const me = await h.call({ url: '/me', headers: { cookie, 'x-forwarded-proto': 'https' } });
    expect(me.json()).toEqual({ user: 'ada', theme: 'dark', remember: 'yes' });
    expect(me.cookies).toEqual([]);
  });

  it('express-session async: the replay has no cookie, so a session route sees no user', async () => {
    const login = await h.call({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/json' },
      body: { user: 'grace' },
    });
    const cookie = login.cookies.map((c) => c.split(';')[0]).join('; ');
    const sync = await h.call({ method: 'POST', url: '/jobs', headers: { cookie } });
    expect(sync.json()).toEqual({ user: 'grace' });

    const result = await h.callAsync({ method: 'POST', url: '/jobs', headers: { cookie } });
    expect(seen.jobs.at(-1)).toEqual({ user: null, cookie: null, type: 'Async' });
    // A 4xx is the app's answer, not a failure: the task succeeds with the 401 recorded.
    expect(result.task.status).toBe('Succeeded');
    expect(result.record.responseContext.statusCode).toBe(401);
    const sid = (cookie.match(/connect\.sid=([^;]+)/) as RegExpMatchArray)[1] as string;
    expect(JSON.stringify(result.task) + JSON.stringify(result.record)).not.toContain(sid);
  });

  it('express.static: a binary file, ETag + If-None-Match 304, a range, HEAD', async () => {
    const r = await h.call({ url: '/static/photo.png' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.raw.isBase64Encoded).toBe(true);
    expect(r.body.equals(PHOTO)).toBe(true);
    expect(r.headers.etag).toBeTruthy();
    expect(r.headers['last-modified']).toBeTruthy();
    expect(r.headers['accept-ranges']).toBe('bytes');

    const notModified = await h.call({
      url: '/static/photo.png',
      headers: { 'if-none-match': r.headers.etag as string },
    });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);

    const range = await h.call({ url: '/static/photo.png', headers: { range: 'bytes=100-1123' } });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 100-1123/${PHOTO.length}`);
    expect(range.body.equals(PHOTO.subarray(100, 1124))).toBe(true);

    const head = await h.call({ method: 'HEAD', url: '/static/photo.png' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);

    const text = await h.call({ url: '/static/hello.txt' });
    expect(text.headers['content-type']?.toLowerCase()).toBe('text/plain; charset=utf-8');
    expect(text.text()).toBe('hello from disk ✓\n');

    const missing = await h.call({ url: '/static/nope.png' });
    expect(missing.status).toBe(404);
  });

  it('res.sendFile and res.download stream the file whole; a missing file is a 404', async () => {
    const sent = await h.call({ url: '/report' });
    expect(sent.status).toBe(200);
    expect(sent.headers['content-type']).toBe('application/pdf');
    expect(sent.body.equals(REPORT)).toBe(true);
    const download = await h.call({ url: '/download' });
    expect(download.status).toBe(200);
    expect(download.headers['content-disposition']).toBe('attachment; filename="Q3 report.pdf"');
    expect(download.body.equals(REPORT)).toBe(true);
    const missing = await h.call({ url: '/missing-file' });
    expect(missing.status).toBe(404);
    expect(missing.text()).not.toContain(dir);
  });

  it('cors: the OPTIONS preflight answers 204 with the allow headers; a simple request gets its origin', async () => {
    const preflight = await h.call({
      method: 'OPTIONS',
      url: '/jobs',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'DELETE',
        'access-control-request-headers': 'content-type,x-trace',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.body.length).toBe(0);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(preflight.headers['access-control-allow-methods']).toBe('GET,POST,DELETE');
    expect(preflight.headers['access-control-allow-headers']).toBe('content-type,x-trace');
    const simple = await h.call({ url: '/me', headers: { origin: 'https://app.example.com' } });
    expect(simple.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(simple.headers.vary).toMatch(/origin/i);
  });

  it('express-rate-limit: keyed on the X-Forwarded-For client, the third call is a 429', async () => {
    const ip = `198.51.100.${10 + taskCounter}`;
    const calls: Result[] = [];
    for (let i = 0; i < 3; i++) calls.push(await h.call({ url: '/limited', headers: { 'x-forwarded-for': ip } }));
    expect(calls.map((c) => c.status)).toEqual([200, 200, 429]);
    expect(calls[0]?.headers.ratelimit).toMatch(/limit=2, remaining=1/);
    const other = await h.call({ url: '/limited', headers: { 'x-forwarded-for': '192.0.2.200' } });
    expect(other.status).toBe(200);
  });

  it('morgan: logs the client address, method, url, status and type, sync and in the replay', async () => {
    await h.call({ url: '/me?x=1', headers: { 'x-forwarded-for': '203.0.113.50' } });
    expect(seen.logLines.at(-1)).toMatch(
      /^203\.0\.113\.50 GET \/me\?x=1 200 application\/json; charset=utf-8 [\d.]+ ms\n$/,
    );
    const before = seen.logLines.length;
    await h.callAsync({ method: 'POST', url: '/jobs', headers: { 'x-forwarded-for': '203.0.113.51' } });
    expect(seen.logLines.slice(before)).toHaveLength(1);
    expect(seen.logLines.at(-1)).toMatch(/^203\.0\.113\.51 POST \/jobs 401 /);
  });

  it('body-parser: raw bytes, a latin-1 text body decoded by its charset, a gzip-encoded JSON body', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const raw = await h.call({
      method: 'POST',
      url: '/raw',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(raw.json()).toEqual({ bytes: bytes.length, sha256: sha256(bytes) });

    // FC 3.0 passes text/* bodies as text; a gateway that base64-encodes them keeps any charset.
    const latin1 = Buffer.from('café crème', 'latin1');
    const textInit = {
      method: 'POST',
      url: '/text',
      headers: { 'content-type': 'text/plain; charset=iso-8859-1' },
    };
    const event = { ...fcHttpEvent(textInit), body: latin1.toString('base64'), isBase64Encoded: true };
    const text = await h.call(textInit, event);
    expect(text.json()).toEqual({ text: 'café crème' });
    const fc2 = await h.callFc2({ ...textInit, path: '/text', body: latin1 });
    expect(fc2.json()).toEqual({ text: 'café crème' });

    const json = { name: '测试', list: [1, 2, 3] };
    const gzInit = {
      method: 'POST',
      url: '/json',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    };
    const gzEvent = {
      ...fcHttpEvent(gzInit),
      body: gzipSync(JSON.stringify(json)).toString('base64'),
      isBase64Encoded: true,
    };
    const gz = await h.call(gzInit, gzEvent);
    expect(gz.json()).toEqual({ received: json });
  });

  it('an error thrown in a route is a generic 500, logged, without a stack', async () => {
    const r = await h.call({ url: '/boom' });
    expectGeneric500(r, 'express-secret-boom');
    expect(h.logger.text()).toContain('express-secret-boom');
  });
});

// ---------------------------------------------------------------------------------------------
// Koa 2 and 3

interface KoaSeen {
  uploads: { bytes: Buffer | undefined; type?: string }[];
}

// biome-ignore lint/suspicious/noExplicitAny: both Koa majors share one set of typings
function koaRealWorld(Koa: any, seen: KoaSeen) {
  const app = new Koa({ proxy: true, keys: ['koa-key'] });
  // koa-conditional-get, inline: answer 304 when the client's copy is fresh.
  app.use(async (ctx: koa3.Context, next: koa3.Next) => {
    await next();
    if (ctx.status === 200 && ctx.fresh) {
      ctx.status = 304;
      ctx.body = null;
    }
  });
  app.use(koaCompress({ threshold: 0 }));
  app.use(koaStatic(dir));
  app.use(bodyParser({ enableTypes: ['json', 'form', 'text'] }));
  const upload = koaMulter({ storage: koaMulter.memoryStorage() });
  const router = new Router();
  router.post('/upload', upload.single('file'), (ctx) => {
    const file = (ctx as unknown as { file?: { buffer: Buffer; originalname: string } }).file;
    seen.uploads.push({ bytes: file?.buffer, type: (ctx as unknown as koa3.Context).fc?.type });
    ctx.body = {
      name: file?.originalname,
      sha256: file ? sha256(file.buffer) : null,
      fields: { ...(ctx.request as unknown as { body: object }).body },
    };
  });
  router.get('/api/stream', (ctx) => {
    ctx.type = 'text/plain';
    ctx.body = Readable.from(['one\n', 'two\n', 'three\n']);
  });
  router.get('/api/buffer', (ctx) => {
    ctx.type = 'application/octet-stream';
    ctx.body = PHOTO;
  });
  router.get('/api/report', (ctx) => {
    ctx.attachment('Q3 report.pdf');
    ctx.body = createReadStream(join(dir, 'report.pdf'));
  });
  router.get('/api/big', (ctx) => {
    ctx.body = BIG_JSON;
  });
  router.post('/api/body', (ctx) => {
    ctx.body = { type: ctx.request.type, body: (ctx.request as unknown as { body: unknown }).body };
  });
  router.get('/api/cookies', (ctx) => {
    ctx.cookies.set('a', '1', { httpOnly: true, signed: false });
    ctx.cookies.set('b', '2', { signed: true, maxAge: 60_000 });
    ctx.body = { ok: true };
  });
  router.get('/api/read-cookies', (ctx) => {
    ctx.body = { a: ctx.cookies.get('a') ?? null, b: ctx.cookies.get('b', { signed: true }) ?? null };
  });
  router.get('/api/boom', () => {
    throw new Error('koa-secret-boom');
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

describe.each([
  ['koa 2', koa2],
  ['koa 3', koa3],
] as const)('%s with real middleware', (_name, Koa) => {
  const seen: KoaSeen = { uploads: [] };
  const h = harness((options) => createKoaHandler(koaRealWorld(Koa, seen), options));

  it('@koa/multer: an upload arrives byte-exact, sync and in the async replay', async () => {
    const file = randomBytes(40 * 1024);
    const form = multipart([
      { name: 'note', value: 'ünïcode' },
      { name: 'file', value: file, filename: 'k.bin', type: 'application/octet-stream' },
    ]);
    const init = { method: 'POST', url: '/upload', headers: { 'content-type': form.contentType }, body: form.body };
    const r = await h.call(init);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ name: 'k.bin', sha256: sha256(file), fields: { note: 'ünïcode' } });

    const result = await h.callAsync({
      ...init,
      headers: { ...init.headers, authorization: SECRET_AUTH, cookie: SECRET_COOKIE },
    });
    expect(seen.uploads.at(-1)?.type).toBe('Async');
    expect(seen.uploads.at(-1)?.bytes?.equals(file)).toBe(true);
    expect(result.record.responseContext.statusCode).toBe(200);
    expect(JSON.parse(result.record.responsePayload)).toMatchObject({ sha256: sha256(file) });
    expectNoSecrets(result);
  });

  it('@koa/bodyparser: JSON, form and text bodies', async () => {
    const json = await h.call({ method: 'POST', url: '/api/body', body: { a: [1, 2], b: 'ü' } });
    expect(json.json()).toEqual({ type: 'application/json', body: { a: [1, 2], b: 'ü' } });
    const form = await h.call({
      method: 'POST',
      url: '/api/body',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x=1&y=hello+world',
    });
    expect(form.json()).toEqual({ type: 'application/x-www-form-urlencoded', body: { x: '1', y: 'hello world' } });
    const text = await h.call({
      method: 'POST',
      url: '/api/body',
      headers: { 'content-type': 'text/plain' },
      body: 'just text ✓',
    });
    expect(text.json()).toEqual({ type: 'text/plain', body: 'just text ✓' });
  });

  it('koa-compress: gzip and brotli, byte-exact, base64 in the FC result', async () => {
    const gz = await h.call({ url: '/api/big', headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.raw.isBase64Encoded).toBe(true);
    expect(JSON.parse(gunzipSync(gz.body).toString('utf8'))).toEqual(BIG_JSON);
    const br = await h.call({ url: '/api/stream', headers: { 'accept-encoding': 'br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.body).toString('utf8')).toBe('one\ntwo\nthree\n');
  });

  it('koa-static: a binary file, a text file, 304 when fresh, HEAD', async () => {
    const r = await h.call({ url: '/photo.png' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.body.equals(PHOTO)).toBe(true);
    const lastModified = r.headers['last-modified'] as string;
    expect(lastModified).toBeTruthy();
    const text = await h.call({ url: '/hello.txt' });
    expect(text.text()).toBe('hello from disk ✓\n');
    const fresh = await h.call({ url: '/photo.png', headers: { 'if-modified-since': lastModified } });
    expect(fresh.status).toBe(304);
    expect(fresh.body.length).toBe(0);
    const head = await h.call({ method: 'HEAD', url: '/photo.png' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it('ctx.body as a stream, as a Buffer, and ctx.attachment with a file stream', async () => {
    const stream = await h.call({ url: '/api/stream' });
    expect(stream.text()).toBe('one\ntwo\nthree\n');
    const buffer = await h.call({ url: '/api/buffer' });
    expect(buffer.raw.isBase64Encoded).toBe(true);
    expect(buffer.body.equals(PHOTO)).toBe(true);
    const report = await h.call({ url: '/api/report' });
    expect(report.headers['content-type']).toBe('application/pdf');
    expect(report.headers['content-disposition']).toBe('attachment; filename="Q3 report.pdf"');
    expect(report.body.equals(REPORT)).toBe(true);
  });

  it('signed cookies: three Set-Cookie out, read back signed', async () => {
    const r = await h.call({ url: '/api/cookies', headers: { 'x-forwarded-proto': 'https' } });
    expect(setCookieNames(r.raw)).toHaveLength(3);
    expect(r.cookies.map((c) => c.split('=')[0]).sort()).toEqual(['a', 'b', 'b.sig']);
    const cookie = r.cookies.map((c) => c.split(';')[0]).join('; ');
    const back = await h.call({ url: '/api/read-cookies', headers: { cookie } });
    expect(back.json()).toEqual({ a: '1', b: '2' });
  });

  it('an error thrown in a route is a 500 without its message or a stack; an unknown method is a 405', async () => {
    const r = await h.call({ url: '/api/boom' });
    expect(r.status).toBe(500);
    expect(r.text()).toBe('Internal Server Error');
    expect(h.logger.text()).toContain('koa-secret-boom');
    const notAllowed = await h.call({ method: 'DELETE', url: '/api/big' });
    expect(notAllowed.status).toBe(405);
    expect(notAllowed.headers.allow).toContain('GET');
  });
});

// ---------------------------------------------------------------------------------------------
// Fastify 5 (the @fastify plugins' current majors need Fastify 5)

interface FastifySeen {
  uploads: { bytes: Buffer; fields: Record<string, unknown>; type?: string }[];
}

/**
 * The app, and the promise of its plugins and routes: `ready` registers them after an await, so
 * they come after the `createHandler` the caller makes at once, as docs/adapters.md asks.
 */
function fastifyRealWorld(seen: FastifySeen) {
  const app = newFastifyApp();
  return { app, ready: register(app, seen) };
}

const newFastifyApp = () => fastify5({ trustProxy: true });

async function register(app: ReturnType<typeof newFastifyApp>, seen: FastifySeen) {
  // @fastify/compress adds itself to routes from an onRoute hook: await it before declaring routes.
  await app.register(fastifyCompress, { global: true, threshold: 0 });
  app.register(fastifyCookie, { secret: 'fastify-cookie-secret' });
  app.register(fastifyFormbody);
  app.register(fastifyCors, { origin: 'https://app.example.com', methods: ['GET', 'POST', 'PUT'] });
  app.register(fastifyMultipart, { limits: { fileSize: 300 * 1024 } });
  app.register(fastifyStatic, { root: dir, prefix: '/public/' });
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-on-send', 'seen');
    return request.url === '/rewrite' ? 'rewritten by onSend' : payload;
  });
  app.post('/upload', async (request) => {
    const part = await request.file();
    if (!part) return { error: 'no file' };
    const bytes = await part.toBuffer();
    const fields: Record<string, unknown> = {};
    for (const [name, field] of Object.entries(part.fields)) {
      if (field && !Array.isArray(field) && field.type === 'field') fields[name] = field.value;
    }
    seen.uploads.push({ bytes, fields, type: request.fc?.type });
    return { name: part.filename, mimetype: part.mimetype, sha256: sha256(bytes), fields };
  });
  app.get('/stream', (_request, reply) => {
    reply.type('text/plain').send(Readable.from(['alpha\n', 'beta\n', 'gamma\n']));
  });
  app.get('/big', async () => BIG_JSON);
  app.get('/rewrite', async (_request, reply) => reply.type('text/plain').send('original'));
  app.post('/form', async (request) => ({ body: request.body }));
  app.get('/cookies', async (_request, reply) => {
    reply.setCookie('a', '1', { httpOnly: true, path: '/' });
    reply.setCookie('b', '2', { signed: true, maxAge: 60, path: '/' });
    reply.setCookie('c', '3', { expires: new Date('2026-10-21T07:28:00Z'), sameSite: 'lax', path: '/' });
    return { ok: true };
  });
  app.get('/read-cookies', async (request) => {
    const b = request.unsignCookie(request.cookies.b ?? '');
    return { a: request.cookies.a ?? null, b: b.valid ? b.value : null };
  });
  app.get('/boom', async () => {
    throw new Error('fastify-secret-boom');
  });
}

describe('fastify 5 with real plugins', () => {
  const seen: FastifySeen = { uploads: [] };
  const { app, ready } = fastifyRealWorld(seen);
  const h = harness((options) => createFastifyHandler(app, options));
  beforeAll(() => ready);

  it('@fastify/multipart: an upload arrives byte-exact, sync, FC 2.0 and in the async replay', async () => {
    const file = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(60 * 1024)]);
    const form = multipart([
      { name: 'title', value: 'fastify ✓' },
      { name: 'file', value: file, filename: 'f.bin', type: 'application/octet-stream' },
    ]);
    const init = { method: 'POST', url: '/upload', headers: { 'content-type': form.contentType }, body: form.body };
    const expected = {
      name: 'f.bin',
      mimetype: 'application/octet-stream',
      sha256: sha256(file),
      fields: { title: 'fastify ✓' },
    };
    const r = await h.call(init);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual(expected);
    const fc2 = await h.callFc2({ ...init, path: '/upload' });
    expect(fc2.json()).toEqual(expected);

    const result = await h.callAsync({
      ...init,
      headers: { ...init.headers, authorization: SECRET_AUTH, cookie: SECRET_COOKIE },
    });
    expect(seen.uploads.at(-1)?.type).toBe('Async');
    expect(seen.uploads.at(-1)?.bytes.equals(file)).toBe(true);
    expect(JSON.parse(result.record.responsePayload)).toEqual(expected);
    expectNoSecrets(result);
  });

  it('@fastify/multipart: a file over the limit is a 413, a truncated body a generic 500, neither hangs', async () => {
    const big = multipart([{ name: 'file', value: randomBytes(301 * 1024), filename: 'big.bin' }]);
    const tooBig = await h.call({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': big.contentType },
      body: big.body,
    });
    expect(tooBig.status).toBe(413);
    const form = multipart([{ name: 'file', value: randomBytes(1024), filename: 'a.bin' }]);
    const truncated = await h.call({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': form.contentType },
      body: form.body.subarray(0, form.body.length - 30),
    });
    expectGeneric500(truncated, 'Unexpected end of form');
  });

  it('@fastify/compress: gzip and brotli for JSON and for a stream, byte-exact', async () => {
    const gz = await h.call({ url: '/big', headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.raw.isBase64Encoded).toBe(true);
    expect(JSON.parse(gunzipSync(gz.body).toString('utf8'))).toEqual(BIG_JSON);
    const br = await h.call({ url: '/stream', headers: { 'accept-encoding': 'br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.body).toString('utf8')).toBe('alpha\nbeta\ngamma\n');
    const plain = await h.call({ url: '/stream' });
    expect(plain.text()).toBe('alpha\nbeta\ngamma\n');
  });

  it('@fastify/static: a binary file, ETag + If-None-Match 304, a range', async () => {
    const r = await h.call({ url: '/public/photo.png' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.body.equals(PHOTO)).toBe(true);
    const etag = r.headers.etag as string;
    expect(etag).toBeTruthy();
    const notModified = await h.call({ url: '/public/photo.png', headers: { 'if-none-match': etag } });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    const range = await h.call({ url: '/public/photo.png', headers: { range: 'bytes=0-511' } });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 0-511/${PHOTO.length}`);
    expect(range.body.equals(PHOTO.subarray(0, 512))).toBe(true);
    const missing = await h.call({ url: '/public/nope.png' });
    expect(missing.status).toBe(404);
  });

  it('@fastify/cookie: three Set-Cookie, none folded, a signed one read back', async () => {
    const r = await h.call({ url: '/cookies' });
    expect(setCookieNames(r.raw)).toHaveLength(3);
    const byName = Object.fromEntries(r.cookies.map((c) => [c.split('=')[0], c]));
    expect(byName.c).toContain('Expires=Wed, 21 Oct 2026 07:28:00 GMT');
    const cookie = r.cookies.map((c) => c.split(';')[0]).join('; ');
    const back = await h.call({ url: '/read-cookies', headers: { cookie } });
    expect(back.json()).toEqual({ a: '1', b: '2' });
  });

  it('@fastify/cors preflight and @fastify/formbody', async () => {
    const preflight = await h.call({
      method: 'OPTIONS',
      url: '/form',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.body.length).toBe(0);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(preflight.headers['access-control-allow-methods']).toBe('GET, POST, PUT');
    const form = await h.call({
      method: 'POST',
      url: '/form',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://app.example.com' },
      body: 'a=1&b=x+y',
    });
    expect(form.json()).toEqual({ body: { a: '1', b: 'x y' } });
    expect(form.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });

  it('an onSend hook can set headers and replace the payload', async () => {
    const r = await h.call({ url: '/rewrite' });
    expect(r.headers['x-on-send']).toBe('seen');
    expect(r.text()).toBe('rewritten by onSend');
  });

  it('an error thrown in a route is a generic 500, logged, without a stack', async () => {
    const r = await h.call({ url: '/boom' });
    expectGeneric500(r, 'fastify-secret-boom');
    expect(h.logger.text()).toContain('fastify-secret-boom');
  });
});
