import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OssStorage } from '../src/oss-storage.js';
import { tempDir } from './helpers.js';

/** A loopback stand-in for an OSS bucket domain: GET and PUT objects, OSS's XML errors. */
const objects = new Map<string, Buffer>();
const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
let server: Server;
let endpoint: string;
let root: string;

function ossError(status: number, code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>r-${status}</RequestId><HostId>h</HostId></Error>`;
}

beforeAll(async () => {
  root = await tempDir('oss');
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      const key = decodeURIComponent((req.url ?? '/').slice(1).split('?')[0] ?? '');
      const xml = { 'content-type': 'application/xml', 'x-oss-request-id': 'r' };
      if (key.startsWith('forbidden/')) return res.writeHead(403, xml).end(ossError(403, 'AccessDenied'));
      if (req.method === 'PUT') {
        objects.set(key, Buffer.concat(chunks));
        return res.writeHead(200, { etag: '"e"', 'x-oss-request-id': 'r' }).end();
      }
      const body = objects.get(key);
      if (!body) return res.writeHead(404, xml).end(ossError(404, 'NoSuchKey'));
      res.writeHead(200, { 'content-type': 'video/mp4', etag: '"e"', 'x-oss-request-id': 'r' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  seen.length = 0;
});

const env = { accessKeyId: 'STS.envkey', accessKeySecret: 'env-secret', securityToken: 'env-token' };

describe('OssStorage (against a loopback OSS)', () => {
  it('downloads and uploads objects, signed with the credentials it was given', async () => {
    objects.set('in/cat.mov', Buffer.from('cat video'));
    const storage = new OssStorage({ endpoint, cname: true, credentials: () => env });
    await storage.download('videos', 'in/cat.mov', join(root, 'cat.mov'));
    expect(await readFile(join(root, 'cat.mov'), 'utf8')).toBe('cat video');
    await writeFile(join(root, 'out.mp4'), 'transcoded');
    await storage.upload('videos', 'out/cat.mp4', join(root, 'out.mp4'));
    expect(objects.get('out/cat.mp4')?.toString()).toBe('transcoded');

    expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /in/cat.mov', 'PUT /out/cat.mp4']);
    for (const { headers } of seen) {
      expect(headers.authorization).toMatch(/^OSS STS\.envkey:/);
      expect(headers['x-oss-security-token']).toBe('env-token');
    }
  });

  it("prefers a call's own credentials (FC custom-runtime headers)", async () => {
    objects.set('in/dog.mov', Buffer.from('dog'));
    const storage = new OssStorage({ endpoint, cname: true, credentials: () => env });
    const call = { credentials: { accessKeyId: 'header-key', accessKeySecret: 'header-secret' } };
    await storage.download('videos', 'in/dog.mov', join(root, 'dog.mov'), call);
    expect(seen[0]?.headers.authorization).toMatch(/^OSS header-key:/);
    expect(seen[0]?.headers['x-oss-security-token']).toBeUndefined();
  });

  it('maps NoSuchKey to 404 ObjectNotFound and 403 to StorageAccessDenied, with no request in the cause', async () => {
    const storage = new OssStorage({ endpoint, cname: true, credentials: () => env });
    const missing = await storage.download('videos', 'in/none.mov', join(root, 'none')).catch((e) => e);
    expect(missing).toMatchObject({ code: 'ObjectNotFound', statusCode: 404 });
    expect(missing.cause).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(missing.cause).not.toHaveProperty('params');
    await expect(storage.download('videos', 'forbidden/x.mov', join(root, 'f'))).rejects.toMatchObject({
      code: 'StorageAccessDenied',
      statusCode: 403,
    });
  });

  it('refuses to run without credentials, saying where they come from', async () => {
    const storage = new OssStorage({ endpoint, cname: true, credentials: () => undefined });
    await expect(storage.download('videos', 'in/cat.mov', join(root, 'x'))).rejects.toMatchObject({
      code: 'MissingCredentials',
      message: expect.stringContaining('ALIBABA_CLOUD_ACCESS_KEY_ID'),
    });
    expect(seen).toEqual([]);
  });

  it('validates its options eagerly', () => {
    expect(() => new OssStorage({})).toThrow(/`region` or `endpoint`/);
    expect(() => new OssStorage({ region: 'cn-hangzhou', timeoutMs: 0 })).toThrow(
      'Expected `timeoutMs` to be an integer from 1 and up, got `0`',
    );
  });
});
