import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, PKG, startFc2Web, waitFor } from './helpers.js';

// The headers of an answer under `fc-async dev` are those FC lets through from a built-in runtime's
// result (fc-contract section 3): every Set-Cookie, and no Content-Disposition, Date or Server set by
// the function, whichever kind of entry made the answer.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(file: string, source: string): Promise<Emulator> {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-result-headers-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, file), source);
  const emulator = await startEmulator({
    entry: join(dir, file),
    name: 'web',
    port: 0,
    controlPort: 0,
    output: () => {},
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return emulator;
}

describe('answer headers under fc-async dev', () => {
  it("sends each of an FC handler's Set-Cookie case variants (the form docs/adapters.md gives)", async () => {
    const emulator = await serve(
      'cookies.mjs',
      `export const handler = async () => ({
  statusCode: 200,
  headers: { 'set-cookie': 'a=1', 'Set-cookie': 'b=2', 'sEt-cookie': 'c=3', 'content-type': 'text/plain' },
  body: 'ok',
});
`,
    );
    const res = await fetch(emulator.triggerUrl);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2', 'c=3']);
  });

  it("drops an app's Content-Disposition, Server and Date as FC does, and keeps its cookies", async () => {
    const express = JSON.stringify(import.meta.resolve('express'));
    const emulator = await serve(
      'app.mjs',
      `import express from ${express};
const app = express();
app.get('/report', (_req, res) => {
  res.cookie('a', '1').cookie('b', '2');
  res.set({ server: 'my-app', date: 'Thu, 01 Jan 1970 00:00:00 GMT' });
  res.attachment('q3-report.txt').send('numbers');
});
export default app;
`,
    );
    const res = await fetch(`${emulator.triggerUrl}/report`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('numbers');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('date')).not.toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  });
});

describe("an FC 2.0 handler's resp.setHeader under fc-async dev", () => {
  // FC 2.0 ignores these names in resp.setHeader as FC 3.0 ignores them in a result.
  const source = `exports.handler = (req, resp) => {
  resp.setHeader('Content-Disposition', 'attachment; filename=report.txt');
  resp.setHeader('Server', 'my-server');
  resp.setHeader('Date', 'Thu, 01 Jan 1970 00:00:00 GMT');
  resp.setHeader('X-Fc-Error-Type', 'MyOwn');
  resp.setHeader('X-Fc-Status', '404');
  resp.setHeader('X-Kept', 'yes');
  resp.setHeader('Set-Cookie', 'a=1');
  resp.setHeader('set-cookie', 'b=2');
  resp.deleteHeader('Date');
  resp.send('done');
};
`;

  it('drops Content-Disposition, Server, Date and X-Fc-* as FC does, and keeps the rest', async () => {
    const fc2 = await startFc2Web(source);
    cleanups.push(fc2.close);
    const res = await fetch(`${fc2.emulator.triggerUrl}/report`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('done');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('date')).not.toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(res.headers.get('x-fc-error-type')).toBeNull();
    expect(res.headers.get('x-fc-status')).toBeNull();
    expect(res.headers.get('x-kept')).toBe('yes');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
  });

  it('an X-Fc-Error-Type the handler set does not fail its async task (FC ignores the header)', async () => {
    const fc2 = await startFc2Web(source);
    cleanups.push(fc2.close);
    const accepted = await fetch(`${fc2.emulator.triggerUrl}/report`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-stateful-async-invocation-id': 'report_1' },
    });
    expect(accepted.status).toBe(202);
    const task = await waitFor(async () => {
      const res = await fetch(`${fc2.emulator.controlUrl}/2023-03-30/functions/web/async-tasks/report_1`);
      const body = (await res.json()) as { status?: string; alreadyRetriedTimes?: number };
      return body.status === 'Succeeded' || body.status === 'Failed' ? body : undefined;
    });
    expect(task).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
  });
});

/** The head of the answer to `request`, sent as is on a connection of its own, in lower case. */
async function answerHead(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString('latin1');
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(request);
  await new Promise<void>((resolve, reject) => {
    socket.on('data', () => {
      if (answer.includes('\r\n\r\n')) resolve();
    });
    socket.once('close', () => reject(new Error(`closed after ${JSON.stringify(answer)}`)));
  });
  socket.destroy();
  return answer.slice(0, answer.indexOf('\r\n\r\n')).toLowerCase();
}

describe('Content-Length of answers without a body (RFC 9110 8.6)', () => {
  const source = `export async function handler(event) {
  const { rawPath } = JSON.parse(event.toString('utf8'));
  if (rawPath === '/empty') return { statusCode: 204, headers: {}, body: '' };
  if (rawPath === '/none') return { statusCode: 200, headers: {}, body: '' };
  if (rawPath === '/binary') return { statusCode: 200, headers: {}, body: Buffer.from('abc').toString('base64'), isBase64Encoded: true };
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'hello world' };
}
`;
  const length = (head: string) => /\r\ncontent-length: (\d+)/.exec(head)?.[1];

  it("HEAD: the Content-Length of the body the function answered, without the body (its GET's head)", async () => {
    const emulator = await serve('h.mjs', source);
    for (const [path, bytes] of [
      ['/doc', '11'],
      ['/binary', '3'],
      ['/none', '0'],
    ] as const) {
      const get = await answerHead(emulator.triggerUrl, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
      expect(length(get)).toBe(bytes);
      const head = await answerHead(emulator.triggerUrl, `HEAD ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
      expect(head).toMatch(/^http\/1\.1 200/);
      // An empty body: none rather than 0, as Node's server sends for a HEAD the app set no length for.
      expect(length(head)).toBe(bytes === '0' ? undefined : bytes);
    }
  });

  it("HEAD: the Content-Length a Koa app sets for it, its GET's", async () => {
    const emulator = await startEmulator({
      entry: fixture('koa-app.mjs'),
      name: 'web',
      port: 0,
      controlPort: 0,
      output: () => {},
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const get = length(await answerHead(emulator.triggerUrl, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n'));
    expect(Number(get)).toBeGreaterThan(0);
    const head = await answerHead(emulator.triggerUrl, 'HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(head).toMatch(/^http\/1\.1 200/);
    expect(length(head)).toBe(get);
  });

  it("HEAD: the same Content-Length for an app served as an FC 2.0 and as an FC 3.0 function (its GET's)", async () => {
    // A length the app never sets (a body written in two chunks): the core's handler keeps it for HEAD.
    const core = JSON.stringify(pathToFileURL(join(PKG, '../core/dist/index.js')).href);
    const app = "(req, res) => { res.setHeader('content-type', 'text/plain'); res.write('hello '); res.end('world'); }";
    const fc2 = await startFc2Web(
      `let handler;\nexports.handler = async (req, resp, context) => {\n  handler ??= (await import(${core})).createFcHandler(${app});\n  return handler(req, resp, context);\n};\n`,
    );
    cleanups.push(fc2.close);
    const fc3 = await serve(
      'h.mjs',
      `import { createFcHandler } from ${core};\nexport const handler = createFcHandler(${app});\n`,
    );
    for (const url of [fc2.emulator.triggerUrl, fc3.triggerUrl]) {
      expect(length(await answerHead(url, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n'))).toBe('11');
      const head = await answerHead(url, 'HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n');
      expect(head).toMatch(/^http\/1\.1 200/);
      expect({ url, length: length(head) }).toEqual({ url, length: '11' });
    }
  });

  it('204: no Content-Length, from a function or from the control plane', async () => {
    const emulator = await serve('h.mjs', source);
    for (const method of ['GET', 'HEAD']) {
      const head = await answerHead(emulator.triggerUrl, `${method} /empty HTTP/1.1\r\nHost: a\r\n\r\n`);
      expect(head).toMatch(/^http\/1\.1 204/);
      expect(length(head)).toBeUndefined();
    }
    const config = `${emulator.controlUrl}/2023-03-30/functions/web/async-invoke-config`;
    const put = await fetch(config, { method: 'PUT', body: '{"maxAsyncRetryAttempts":1}' });
    expect(put.status).toBe(200);
    const { host, pathname } = new URL(config);
    const head = await answerHead(config, `DELETE ${pathname} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    expect(head).toMatch(/^http\/1\.1 204/);
    expect(length(head)).toBeUndefined();
  });
});
