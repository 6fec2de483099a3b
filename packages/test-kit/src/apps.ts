/**
 * The same app, route for route, as a raw Node handler and in Express, Koa and Fastify. The
 * conformance table runs every case against each.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { getInvocation } from '@fc-async/core';

/** A real 1×1 PNG. */
export const PNG_BYTES = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
export const GZIP_JSON = { compressed: true, text: 'zip zap' };
export const UNICODE_TEXT = 'héllo wörld ✓ 日本語';
export const COOKIES = [
  'a=1; Path=/; HttpOnly',
  'b=2; Max-Age=60; Path=/; Secure',
  'c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/; SameSite=Lax',
];

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Gates for interleaving: `/slow?key=K` waits until `release(K)`. */
export class Gates {
  private readonly waiting = new Map<string, { promise: Promise<void>; open: () => void }>();
  private entry(key: string) {
    let e = this.waiting.get(key);
    if (!e) {
      let open!: () => void;
      const promise = new Promise<void>((r) => {
        open = r;
      });
      e = { promise, open };
      this.waiting.set(key, e);
    }
    return e;
  }
  wait(key: string): Promise<void> {
    return this.entry(key).promise;
  }
  release(key: string): void {
    this.entry(key).open();
  }
}

function streamBody(): Readable {
  return Readable.from(['chunk-2\n', 'chunk-3\n']);
}

function invocationView(req: unknown, natural: unknown) {
  const inv = getInvocation(req);
  return {
    requestId: inv?.requestId,
    type: inv?.type,
    functionName: inv?.functionName,
    region: inv?.region,
    accountId: inv?.accountId,
    qualifier: inv?.qualifier,
    natural: (natural as { requestId?: string } | undefined)?.requestId,
    keys: inv ? Object.keys(inv) : [],
  };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, value: unknown, status = 200) {
  const text = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(text);
}

/** The raw Node request listener version. */
export function rawApp(gates: Gates) {
  return async function rawListener(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /json':
      case 'HEAD /json':
        return sendJson(res, { hello: 'world' });
      case 'POST /echo-json':
        return sendJson(res, { received: JSON.parse((await readAll(req)).toString('utf8')) });
      case 'POST /echo-text': {
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        return res.end((await readAll(req)).toString('utf8'));
      }
      case 'POST /form':
        return sendJson(res, { form: Object.fromEntries(new URLSearchParams((await readAll(req)).toString('utf8'))) });
      case 'POST /binary': {
        const data = await readAll(req);
        res.setHeader('content-type', 'application/octet-stream');
        res.setHeader('x-sha256', sha256(data));
        return res.end(data);
      }
      case 'GET /png':
        res.setHeader('content-type', 'image/png');
        return res.end(PNG_BYTES);
      case 'GET /gzip':
        res.setHeader('content-type', 'application/json');
        res.setHeader('content-encoding', 'gzip');
        return res.end(gzipSync(JSON.stringify(GZIP_JSON)));
      case 'POST /length': {
        const data = await readAll(req);
        return sendJson(res, {
          contentLength: req.headers['content-length'],
          bytes: data.length,
          text: data.toString('utf8'),
        });
      }
      case 'GET /query':
        return sendJson(res, { url: req.url, query: Object.fromEntries(url.searchParams) });
      case 'GET /headers':
        return sendJson(res, { accept: req.headers.accept, multi: req.headers['x-multi'] });
      case 'GET /cookies':
        res.setHeader('set-cookie', COOKIES);
        return sendJson(res, { ok: true });
      case 'GET /redirect':
        res.writeHead(302, { location: '/json' });
        return res.end();
      case 'GET /no-content':
        res.statusCode = 204;
        return res.end();
      case 'GET /not-modified':
        res.statusCode = 304;
        return res.end();
      case 'GET /stream':
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.write('chunk-1\n');
        streamBody().pipe(res);
        return;
      case 'GET /throw-sync':
        throw new Error('boom-secret-sync');
      case 'GET /throw-async':
        await new Promise((r) => setTimeout(r, 1));
        throw new Error('boom-secret-async');
      case 'POST /big': {
        const data = await readAll(req);
        return sendJson(res, { bytes: data.length, sha256: sha256(data) });
      }
      case 'GET /slow': {
        const key = url.searchParams.get('key') ?? '';
        await gates.wait(key);
        return sendJson(res, { key, requestId: getInvocation(req)?.requestId });
      }
      case 'GET /ip':
        return sendJson(res, {
          ip: String(req.headers['x-forwarded-for'] ?? req.socket.remoteAddress)
            .split(',')[0]
            ?.trim(),
        });
      case 'GET /invocation':
        return sendJson(res, invocationView(req, getInvocation(req)));
      case 'GET /unicode':
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        return res.end(UNICODE_TEXT);
      default:
        return sendJson(res, { code: 'NotFound' }, 404);
    }
  };
}

// The framework versions take the framework module, so one definition serves both majors.

// biome-ignore lint/suspicious/noExplicitAny: the framework module is one of two majors with different typings.
type AnyModule = any;

export function expressApp(express: AnyModule, gates: Gates) {
  const app = express();
  app.set('trust proxy', true);
  // Raw-body routes first, before the global parsers claim their bodies.
  app.post('/length', express.raw({ type: () => true }), (req: AnyModule, res: AnyModule) =>
    res.json({ contentLength: req.headers['content-length'], bytes: req.body.length, text: req.body.toString('utf8') }),
  );
  app.post('/big', express.raw({ type: () => true, limit: '10mb' }), (req: AnyModule, res: AnyModule) =>
    res.json({ bytes: req.body.length, sha256: sha256(req.body) }),
  );
  app.use(express.json());
  app.use(express.text());
  app.use(express.urlencoded({ extended: false }));
  app.use(express.raw({ type: 'application/octet-stream', limit: '10mb' }));
  app.get('/json', (_req: AnyModule, res: AnyModule) => res.json({ hello: 'world' }));
  app.post('/echo-json', (req: AnyModule, res: AnyModule) => res.json({ received: req.body }));
  app.post('/echo-text', (req: AnyModule, res: AnyModule) => res.type('text/plain').send(req.body));
  app.post('/form', (req: AnyModule, res: AnyModule) => res.json({ form: { ...req.body } }));
  app.post('/binary', (req: AnyModule, res: AnyModule) => {
    res.set('x-sha256', sha256(req.body));
    res.type('application/octet-stream').send(req.body);
  });
  app.get('/png', (_req: AnyModule, res: AnyModule) => res.type('image/png').send(PNG_BYTES));
  app.get('/gzip', (_req: AnyModule, res: AnyModule) => {
    res.set('content-encoding', 'gzip');
    res.type('application/json').send(gzipSync(JSON.stringify(GZIP_JSON)));
  });
  app.get('/query', (req: AnyModule, res: AnyModule) => res.json({ url: req.url, query: { ...req.query } }));
  app.get('/headers', (req: AnyModule, res: AnyModule) =>
    res.json({ accept: req.headers.accept, multi: req.headers['x-multi'] }),
  );
  app.get('/cookies', (_req: AnyModule, res: AnyModule) => {
    res.cookie('a', '1', { path: '/', httpOnly: true });
    res.cookie('b', '2', { maxAge: 60_000, path: '/', secure: true });
    res.cookie('c', '3', { expires: new Date('2026-10-21T07:28:00Z'), path: '/', sameSite: 'lax' });
    res.json({ ok: true });
  });
  app.get('/redirect', (_req: AnyModule, res: AnyModule) => res.redirect(302, '/json'));
  app.get('/no-content', (_req: AnyModule, res: AnyModule) => res.status(204).end());
  app.get('/not-modified', (_req: AnyModule, res: AnyModule) => res.status(304).end());
  app.get('/stream', (_req: AnyModule, res: AnyModule) => {
    res.type('text/plain');
    res.write('chunk-1\n');
    streamBody().pipe(res);
  });
  app.get('/throw-sync', () => {
    throw new Error('boom-secret-sync');
  });
  app.get('/throw-async', (_req: AnyModule, _res: AnyModule, next: AnyModule) => {
    // Express 4 does not catch rejections itself: hand them over as Express 4 apps do.
    new Promise((r) => setTimeout(r, 1)).then(() => next(new Error('boom-secret-async')));
  });
  app.get('/slow', async (req: AnyModule, res: AnyModule) => {
    await gates.wait(String(req.query.key));
    res.json({ key: req.query.key, requestId: getInvocation(req)?.requestId });
  });
  app.get('/ip', (req: AnyModule, res: AnyModule) => res.json({ ip: req.ip }));
  app.get('/invocation', (req: AnyModule, res: AnyModule) => res.json(invocationView(req, req.fc)));
  app.get('/unicode', (_req: AnyModule, res: AnyModule) => res.type('text/plain').send(UNICODE_TEXT));
  return app;
}

export function koaApp(Koa: AnyModule, Router: AnyModule, gates: Gates) {
  const app = new Koa({ proxy: true });
  const router = new Router();
  const raw = (ctx: AnyModule) => readAll(ctx.req);
  router.get('/json', (ctx: AnyModule) => {
    ctx.body = { hello: 'world' };
  });
  router.post('/echo-json', async (ctx: AnyModule) => {
    ctx.body = { received: JSON.parse((await raw(ctx)).toString('utf8')) };
  });
  router.post('/echo-text', async (ctx: AnyModule) => {
    ctx.type = 'text/plain';
    ctx.body = (await raw(ctx)).toString('utf8');
  });
  router.post('/form', async (ctx: AnyModule) => {
    ctx.body = { form: Object.fromEntries(new URLSearchParams((await raw(ctx)).toString('utf8'))) };
  });
  router.post('/binary', async (ctx: AnyModule) => {
    const data = await raw(ctx);
    ctx.set('x-sha256', sha256(data));
    ctx.type = 'application/octet-stream';
    ctx.body = data;
  });
  router.get('/png', (ctx: AnyModule) => {
    ctx.type = 'image/png';
    ctx.body = PNG_BYTES;
  });
  router.get('/gzip', (ctx: AnyModule) => {
    ctx.set('content-encoding', 'gzip');
    ctx.type = 'application/json';
    ctx.body = gzipSync(JSON.stringify(GZIP_JSON));
  });
  router.post('/length', async (ctx: AnyModule) => {
    const data = await raw(ctx);
    ctx.body = { contentLength: ctx.get('content-length'), bytes: data.length, text: data.toString('utf8') };
  });
  router.get('/query', (ctx: AnyModule) => {
    ctx.body = { url: ctx.url, query: { ...ctx.query } };
  });
  router.get('/headers', (ctx: AnyModule) => {
    ctx.body = { accept: ctx.get('accept'), multi: ctx.get('x-multi') };
  });
  router.get('/cookies', (ctx: AnyModule) => {
    ctx.cookies.set('a', '1', { path: '/', httpOnly: true, overwrite: true });
    ctx.cookies.set('b', '2', { maxAge: 60_000, path: '/', secure: true, httpOnly: false, secureProxy: true });
    ctx.cookies.set('c', '3', {
      expires: new Date('2026-10-21T07:28:00Z'),
      path: '/',
      sameSite: 'lax',
      httpOnly: false,
    });
    ctx.body = { ok: true };
  });
  router.get('/redirect', (ctx: AnyModule) => {
    ctx.status = 302;
    ctx.redirect('/json');
  });
  router.get('/no-content', (ctx: AnyModule) => {
    ctx.status = 204;
  });
  router.get('/not-modified', (ctx: AnyModule) => {
    ctx.status = 304;
  });
  router.get('/stream', (ctx: AnyModule) => {
    ctx.status = 200;
    ctx.type = 'text/plain';
    ctx.res.write('chunk-1\n');
    ctx.body = streamBody();
  });
  router.get('/throw-sync', () => {
    throw new Error('boom-secret-sync');
  });
  router.get('/throw-async', async () => {
    await new Promise((r) => setTimeout(r, 1));
    throw new Error('boom-secret-async');
  });
  router.post('/big', async (ctx: AnyModule) => {
    const data = await raw(ctx);
    ctx.body = { bytes: data.length, sha256: sha256(data) };
  });
  router.get('/slow', async (ctx: AnyModule) => {
    await gates.wait(String(ctx.query.key));
    ctx.body = { key: ctx.query.key, requestId: getInvocation(ctx)?.requestId };
  });
  router.get('/ip', (ctx: AnyModule) => {
    ctx.body = { ip: ctx.ip };
  });
  router.get('/invocation', (ctx: AnyModule) => {
    ctx.body = invocationView(ctx, ctx.fc);
  });
  router.get('/unicode', (ctx: AnyModule) => {
    ctx.type = 'text/plain';
    ctx.body = UNICODE_TEXT;
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

export function fastifyApp(Fastify: AnyModule, gates: Gates) {
  const app = Fastify({ trustProxy: true, bodyLimit: 10 * 1024 * 1024 });
  app.addContentTypeParser(
    'application/octet-stream',
    { parseAs: 'buffer' },
    (_req: AnyModule, body: Buffer, done: AnyModule) => done(null, body),
  );
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req: AnyModule, body: string, done: AnyModule) => done(null, Object.fromEntries(new URLSearchParams(body))),
  );
  app.get('/json', async () => ({ hello: 'world' }));
  app.post('/echo-json', async (req: AnyModule) => ({ received: req.body }));
  app.post('/echo-text', async (req: AnyModule, reply: AnyModule) => reply.type('text/plain').send(req.body));
  app.post('/form', async (req: AnyModule) => ({ form: req.body }));
  app.post('/binary', async (req: AnyModule, reply: AnyModule) =>
    reply.header('x-sha256', sha256(req.body)).type('application/octet-stream').send(req.body),
  );
  app.get('/png', async (_req: AnyModule, reply: AnyModule) => reply.type('image/png').send(PNG_BYTES));
  app.get('/gzip', async (_req: AnyModule, reply: AnyModule) =>
    reply
      .header('content-encoding', 'gzip')
      .type('application/json')
      .send(gzipSync(JSON.stringify(GZIP_JSON))),
  );
  app.register(async (scope: AnyModule) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req: AnyModule, body: Buffer, done: AnyModule) =>
      done(null, body),
    );
    scope.post('/length', async (req: AnyModule) => ({
      contentLength: req.headers['content-length'],
      bytes: req.body.length,
      text: req.body.toString('utf8'),
    }));
    scope.post('/big', async (req: AnyModule) => ({ bytes: req.body.length, sha256: sha256(req.body) }));
  });
  app.get('/query', async (req: AnyModule) => ({ url: req.url, query: { ...req.query } }));
  app.get('/headers', async (req: AnyModule) => ({ accept: req.headers.accept, multi: req.headers['x-multi'] }));
  app.get('/cookies', async (_req: AnyModule, reply: AnyModule) => {
    reply.header('set-cookie', COOKIES);
    return { ok: true };
  });
  app.get('/redirect', async (_req: AnyModule, reply: AnyModule) => reply.code(302).header('location', '/json').send());
  app.get('/no-content', async (_req: AnyModule, reply: AnyModule) => reply.code(204).send());
  app.get('/not-modified', async (_req: AnyModule, reply: AnyModule) => reply.code(304).send());
  app.get('/stream', (_req: AnyModule, reply: AnyModule) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    reply.raw.write('chunk-1\n');
    streamBody().pipe(reply.raw);
  });
  app.get('/throw-sync', () => {
    throw new Error('boom-secret-sync');
  });
  app.get('/throw-async', async () => {
    await new Promise((r) => setTimeout(r, 1));
    throw new Error('boom-secret-async');
  });
  app.get('/slow', async (req: AnyModule) => {
    await gates.wait(String(req.query.key));
    return { key: req.query.key, requestId: getInvocation(req)?.requestId };
  });
  app.get('/ip', async (req: AnyModule) => ({ ip: req.ip }));
  app.get('/invocation', async (req: AnyModule) => invocationView(req, req.fc));
  app.get('/unicode', async (_req: AnyModule, reply: AnyModule) => reply.type('text/plain').send(UNICODE_TEXT));
  return app;
}
