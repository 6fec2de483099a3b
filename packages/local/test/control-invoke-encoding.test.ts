import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';

// InvokeFunction, sync, of an HTTP function whose app compressed its answer (the event asked for
// gzip, as a captured browser request does): the bytes came back without their Content-Encoding,
// gzip labelled text/plain, which no client could read.

const root = mkdtempSync(join(tmpdir(), 'fc-async-invoke-encoding-'));
const ENTRY = `import { gzipSync } from 'node:zlib';
export async function handler(event) {
  const { headers = {} } = JSON.parse(event.toString('utf8'));
  const text = 'frame '.repeat(1000);
  if (!/gzip/.test(headers['Accept-Encoding'] ?? '')) return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: text };
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' },
    isBase64Encoded: true,
    body: gzipSync(text).toString('base64'),
  };
}
`;

let emulator: Emulator;
beforeAll(async () => {
  writeFileSync(join(root, 'gz.mjs'), ENTRY);
  emulator = await startEmulator({ entry: join(root, 'gz.mjs'), port: 0, controlPort: 0, output: () => {} });
});
afterAll(async () => {
  await emulator?.close({ timeoutMs: 1000 });
  rmSync(root, { recursive: true, force: true });
});

const invoke = (headers: Record<string, string>) =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/gz/invocations`, {
    method: 'POST',
    body: JSON.stringify({ rawPath: '/video/1', headers, requestContext: { http: { method: 'GET' } } }),
  });

describe('InvokeFunction, sync, of an HTTP function', () => {
  it("answers a compressed answer's bytes with its Content-Encoding, so that the caller can read them", async () => {
    const res = await invoke({ 'accept-encoding': 'gzip' });
    expect([res.status, res.headers.get('content-type'), res.headers.get('content-encoding')]).toEqual([
      200,
      'text/plain',
      'gzip',
    ]);
    // fetch decodes what its Content-Encoding names: the app's text, whole.
    expect(await res.text()).toBe('frame '.repeat(1000));
  });

  it('answers an uncompressed answer without a Content-Encoding', async () => {
    const res = await invoke({});
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(await res.text()).toBe('frame '.repeat(1000));
  });

  // The raw bytes, as the official SDK reads them (it decodes nothing): gzip, named so.
  it('keeps the compressed bytes as the function answered them', async () => {
    const url = new URL(`${emulator.controlUrl}/2023-03-30/functions/gz/invocations`);
    const body = JSON.stringify({
      rawPath: '/',
      headers: { 'accept-encoding': 'gzip' },
      requestContext: { http: { method: 'GET' } },
    });
    const raw = await new Promise<{ encoding?: string; bytes: Buffer }>((resolve, reject) => {
      const req = request(url, { method: 'POST' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], bytes: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(raw.encoding).toBe('gzip');
    expect(gunzipSync(raw.bytes).toString('utf8')).toBe('frame '.repeat(1000));
  });
});
