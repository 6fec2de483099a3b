import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  COOKIES,
  fixtureRequestId,
  Gates,
  GZIP_JSON,
  invoke,
  PNG_BYTES,
  recordingLogger,
  sha256,
  signatures,
  targets,
  UNICODE_TEXT,
} from '../src/index.js';

describe.each(targets)('$name', (target) => {
  describe.each(signatures)('%s', (signature) => {
    const gates = new Gates();
    const logger = recordingLogger();
    const handler = target.create({ logger }, gates);
    const call = (spec: Parameters<typeof invoke>[2]) => invoke(handler, signature, spec);

    it('GET JSON', async () => {
      const r = await call({ path: '/json', headers: { accept: 'application/json' } });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.json()).toEqual({ hello: 'world' });
      if (signature === 'fc3') expect(r.isBase64Encoded).toBe(false);
    });

    it('POST JSON', async () => {
      const payload = { name: '测试', list: [1, 2, 3], nested: { ok: true } };
      const r = await call({
        method: 'POST',
        path: '/echo-json',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      });
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ received: payload });
    });

    it('text body both ways', async () => {
      const text = 'plain text ✓ with\nnewlines';
      const r = await call({
        method: 'POST',
        path: '/echo-text',
        headers: { 'content-type': 'text/plain' },
        body: text,
      });
      expect(r.status).toBe(200);
      expect(r.text()).toBe(text);
    });

    it('form-urlencoded', async () => {
      const r = await call({
        method: 'POST',
        path: '/form',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'a=1&b=hello+world&c=%E2%9C%93',
      });
      expect(r.json()).toEqual({ form: { a: '1', b: 'hello world', c: '✓' } });
    });

    it('binary request and response, byte-exact', async () => {
      const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(4096)]);
      const r = await call({
        method: 'POST',
        path: '/binary',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      expect(r.status).toBe(200);
      expect(r.headers['x-sha256']).toBe(sha256(bytes));
      expect(r.body.equals(bytes)).toBe(true);
      if (signature === 'fc3') expect(r.isBase64Encoded).toBe(true);
    });

    it('binary response: a PNG, byte-exact', async () => {
      const r = await call({ path: '/png' });
      expect(r.headers['content-type']).toBe('image/png');
      expect(r.body.equals(PNG_BYTES)).toBe(true);
      if (signature === 'fc3') expect(r.isBase64Encoded).toBe(true);
    });

    it('gzip response stays compressed and intact', async () => {
      const r = await call({ path: '/gzip' });
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(JSON.parse(gunzipSync(r.body).toString('utf8'))).toEqual(GZIP_JSON);
      if (signature === 'fc3') expect(r.isBase64Encoded).toBe(true);
    });

    it('non-ASCII body: content-length counts bytes', async () => {
      const r = await call({
        method: 'POST',
        path: '/length',
        headers: { 'content-type': 'text/plain' },
        body: UNICODE_TEXT,
      });
      const bytes = Buffer.byteLength(UNICODE_TEXT);
      expect(bytes).toBeGreaterThan(UNICODE_TEXT.length);
      expect(r.json()).toEqual({ contentLength: String(bytes), bytes, text: UNICODE_TEXT });
    });

    it('non-ASCII response text', async () => {
      const r = await call({ path: '/unicode' });
      expect(r.text()).toBe(UNICODE_TEXT);
      if (signature === 'fc3') expect(r.isBase64Encoded).toBe(false);
    });

    it('multi-value query: FC 3.0 comma-joins, FC 2.0 repeats', async () => {
      const r = await call({ path: '/query', query: { tag: ['a', 'b'], q: 'x y&z' } });
      const body = r.json() as { url: string; query: Record<string, unknown> };
      expect(body.query.q).toBe('x y&z');
      expect(body.url).toContain('q=x%20y%26z');
      if (signature === 'fc3') {
        expect(body.url).toContain('tag=a,b');
        expect(body.query.tag).toBe('a,b');
      } else {
        expect(body.url).toContain('tag=a&tag=b');
      }
    });

    it('repeated request headers arrive joined', async () => {
      const r = await call({ path: '/headers', headers: { accept: 'text/html', 'x-multi': ['1', '2'] } });
      const body = r.json() as { accept: string; multi: string };
      expect(body.accept).toBe('text/html');
      expect(body.multi.replace(/\s/g, '')).toBe('1,2');
    });

    it('three cookies with attributes, none dropped', async () => {
      const r = await call({ path: '/cookies', headers: { 'x-forwarded-proto': 'https' } });
      expect(r.status).toBe(200);
      expect(r.cookies).toHaveLength(3);
      const byName = Object.fromEntries(r.cookies.map((c) => [c.split('=')[0], c]));
      expect(byName.a).toMatch(/^a=1;/);
      expect(byName.a).toMatch(/httponly/i);
      expect(byName.b).toMatch(/^b=2;/);
      // Koa's cookies module writes maxAge as Expires only.
      expect(byName.b).toMatch(/max-age=60|expires=/i);
      expect(byName.b).toMatch(/secure/i);
      expect(byName.c).toMatch(/^c=3;/);
      expect(byName.c).toContain('Wed, 21 Oct 2026 07:28:00 GMT');
      expect(byName.c).toMatch(/samesite=lax/i);
      expect(COOKIES).toHaveLength(3);
    });

    it('redirect', async () => {
      const r = await call({ path: '/redirect' });
      expect(r.status).toBe(302);
      expect(r.headers.location).toBe('/json');
    });

    it('204 and 304 carry no body', async () => {
      const noContent = await call({ path: '/no-content' });
      expect(noContent.status).toBe(204);
      expect(noContent.body.length).toBe(0);
      const notModified = await call({ path: '/not-modified' });
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
    });

    it('HEAD carries headers and no body', async () => {
      const r = await call({ method: 'HEAD', path: '/json' });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.body.length).toBe(0);
    });

    it('streamed response collected whole', async () => {
      const r = await call({ path: '/stream' });
      expect(r.status).toBe(200);
      expect(r.text()).toBe('chunk-1\nchunk-2\nchunk-3\n');
    });

    it('404 for an unknown route', async () => {
      const r = await call({ path: '/missing' });
      expect(r.status).toBe(404);
    });

    it.each([
      ['thrown sync error', '/throw-sync', 'boom-secret-sync'],
      ['rejected async error', '/throw-async', 'boom-secret-async'],
    ])('%s: generic 500, logged, no stack', async (_label, path, secret) => {
      const before = logger.entries.length;
      const r = await call({ path });
      expect(r.status).toBe(500);
      expect(r.text()).not.toContain(secret);
      expect(r.text()).not.toMatch(/\bat .+:\d+:\d+/);
      const logged = logger.entries.slice(before).filter((e) => e.level === 'error');
      expect(logged.length).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(logged, (_k, v) => (v instanceof Error ? v.message : v))).toContain(secret);
    });

    it('a 6 MB body', async () => {
      const bytes = randomBytes(6 * 1024 * 1024);
      const r = await call({
        method: 'POST',
        path: '/big',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ bytes: bytes.length, sha256: sha256(bytes) });
    });

    it('client address from X-Forwarded-For', async () => {
      const r = await call({ path: '/ip', headers: { 'x-forwarded-for': '198.51.100.9' }, sourceIp: '10.0.0.1' });
      expect((r.json() as { ip: string }).ip).toBe('198.51.100.9');
    });

    it('invocation context reaches the app, without credentials', async () => {
      const requestId = fixtureRequestId();
      const r = await call({ path: '/invocation', requestId });
      const body = r.json() as Record<string, unknown>;
      expect(body).toMatchObject({
        requestId,
        type: 'Sync',
        functionName: 'demo',
        region: 'cn-hangzhou',
        accountId: '1234567890123456',
        qualifier: 'LATEST',
        natural: requestId,
      });
      expect(JSON.stringify(body)).not.toMatch(/SECRET|credential|accessKey|securityToken/i);
    });

    it('interleaved concurrent invocations never see each other', async () => {
      const idA = fixtureRequestId();
      const idB = fixtureRequestId();
      const key = `${signature}-${Math.random()}`;
      const a = call({ path: '/slow', query: { key: `${key}-a` }, requestId: idA });
      const b = call({ path: '/slow', query: { key: `${key}-b` }, requestId: idB });
      await new Promise((r) => setTimeout(r, 5));
      gates.release(`${key}-b`);
      const rb = await b;
      gates.release(`${key}-a`);
      const ra = await a;
      expect(ra.json()).toEqual({ key: `${key}-a`, requestId: idA });
      expect(rb.json()).toEqual({ key: `${key}-b`, requestId: idB });
    });
  });
});
