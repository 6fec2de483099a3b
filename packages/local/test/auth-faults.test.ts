import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Emulator, signAcsRequest, startEmulator, verifyAcsSignature } from '../src/index.js';
import { $FC, fixture, launchChromium, sdk } from './helpers.js';

// What an attacker can do with requests it saw or makes a browser send, against a control plane
// that requires signatures (control.test.ts covers the plain accept/refuse cases).

const key = { accessKeyId: 'dev-key', accessKeySecret: 'dev-secret' };
const basic = `Basic ${Buffer.from('dev-key:dev-secret').toString('base64')}`;

interface Sent {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let emulator: Emulator;
let recorder: Server;
const recorded: Sent[] = [];

/** The official SDK's request, recorded by a server that answers `{}`, to be sent again by hand. */
async function recordSdk(call: (client: ReturnType<typeof sdk>) => Promise<unknown>): Promise<Sent> {
  const address = recorder.address() as AddressInfo;
  await call(sdk(`http://127.0.0.1:${address.port}`, key));
  return recorded.at(-1) as Sent;
}

/** Sends `sent` to the control plane as is, bar `headers` (`undefined` removes one). */
function replay(
  sent: Sent,
  headers: Record<string, string | undefined> = {},
  url = sent.url,
): Promise<{ status: number; body: string }> {
  const all: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries({ ...sent.headers, ...headers }))
    if (value !== undefined) all[name] = value;
  delete all['transfer-encoding'];
  all['content-length'] = String(sent.body.length);
  const control = new URL(emulator.controlUrl);
  return new Promise((resolve, reject) => {
    request({ host: control.hostname, port: control.port, method: sent.method, path: url, headers: all }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end(sent.body);
  });
}

const tasks = async () =>
  (await sdk(emulator.controlUrl, key).listAsyncTasks('echo', new $FC.ListAsyncTasksRequest({}))).body?.tasks ?? [];

beforeAll(async () => {
  emulator = await startEmulator({
    output: () => {},
    port: 0,
    controlPort: 0,
    entry: fixture('echo-handler.mjs'),
    name: 'echo',
    credentials: key,
    requireSignatures: true,
  });
  recorder = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      recorded.push({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise<void>((resolve) => recorder.close(() => resolve()));
  await emulator.close();
});

describe('a replayed signed request', () => {
  it('is served once: the same request again answers 400 SignatureNonceUsed', async () => {
    const sent = await recordSdk((c) => c.listAsyncTasks('echo', new $FC.ListAsyncTasksRequest({ limit: 5 })));
    expect(await replay(sent)).toMatchObject({ status: 200 });
    const again = await replay(sent);
    expect(again.status).toBe(400);
    expect(JSON.parse(again.body)).toMatchObject({ Code: 'SignatureNonceUsed', RequestId: expect.any(String) });
    // The SDK signs every call with a fresh nonce.
    const client = sdk(emulator.controlUrl, key);
    for (let i = 0; i < 3; i++) {
      expect((await client.listAsyncTasks('echo', new $FC.ListAsyncTasksRequest({}))).statusCode).toBe(200);
    }
  });

  it('is refused with a security token: the key is no STS key (a client set up with STS would work only here)', async () => {
    const client = sdk(emulator.controlUrl, { ...key, securityToken: 'not-a-real-sts-token' } as typeof key);
    const failure = await client.listAsyncTasks('echo', new $FC.ListAsyncTasksRequest({})).then(
      () => undefined,
      (error: { code?: string; statusCode?: number }) => error,
    );
    expect(failure).toMatchObject({ code: 'InvalidSecurityToken.MismatchWithAccessKey', statusCode: 400 });
  });

  it('cannot be turned into an async invocation through the unsigned x-fc-invocation-type', async () => {
    const sent = await recordSdk((c) =>
      c.invokeFunction('echo', new $FC.InvokeFunctionRequest({ body: Readable.from([Buffer.from('{"n":1}')]) })),
    );
    expect((await replay(sent)).status).toBe(200);
    const forged = await replay(sent, { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'forged_1' });
    expect(forged.status).toBe(400);
    expect(JSON.parse(forged.body)).toMatchObject({ Code: 'SignatureNonceUsed' });
    expect((await tasks()).map((t) => t.taskId)).not.toContain('forged_1');
  });

  it("is refused when it was signed for Function Compute's own endpoint", async () => {
    const path = '/2023-03-30/functions/echo/async-tasks';
    for (const host of ['1234567890.cn-hangzhou.fc.aliyuncs.com', '1234567890.cn-hangzhou.fc.aliyuncs.com.:443']) {
      const headers = signAcsRequest({ method: 'GET', path, query: '', headers: { host }, body: Buffer.alloc(0) }, key);
      const answer = await replay({ method: 'GET', url: path, headers, body: Buffer.alloc(0) });
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body)).toMatchObject({
        Code: 'AccessDenied',
        Message: expect.stringContaining('aliyuncs.com'),
      });
    }
    // The same request signed for the address the client uses is served.
    const control = new URL(emulator.controlUrl);
    const headers = signAcsRequest(
      { method: 'GET', path, query: '', headers: { host: control.host }, body: Buffer.alloc(0) },
      key,
    );
    expect((await replay({ method: 'GET', url: path, headers, body: Buffer.alloc(0) })).status).toBe(200);
  });

  it('holds a nonce through the last millisecond its date is accepted: no replay at the window edge', () => {
    const request = { method: 'GET', path: '/2023-03-30/functions/echo/async-tasks', query: '', body: Buffer.alloc(0) };
    const lookup = (id: string) => (id === key.accessKeyId ? key.accessKeySecret : undefined);
    const date = new Date(Math.floor(Date.now() / 1000) * 1000);
    const headers = signAcsRequest({ ...request, headers: { host: '127.0.0.1:9001' } }, key, { date });
    const edge = date.getTime() + 900_000; // still accepted: the date is 900 s away, not more
    let heldUntil = 0;
    const checkNonce = (_nonce: string, expiresAt: number) => {
      heldUntil = expiresAt;
      return true;
    };
    expect(verifyAcsSignature({ ...request, headers }, lookup, { now: edge, checkNonce })).toMatchObject({ ok: true });
    // A nonce forgotten at the edge let the same request in again within that millisecond.
    expect(heldUntil).toBeGreaterThan(edge);
    expect(verifyAcsSignature({ ...request, headers }, lookup, { now: edge + 1 })).toMatchObject({
      code: 'RequestTimeTooSkewed',
    });
  });

  it('needs a nonce once nonces are checked, and only a valid signature uses one up', () => {
    const request = { method: 'GET', path: '/2023-03-30/functions/echo/async-tasks', query: '', body: Buffer.alloc(0) };
    const lookup = (id: string) => (id === key.accessKeyId ? key.accessKeySecret : undefined);
    const seen = new Set<string>();
    const checkNonce = (nonce: string) => !seen.has(nonce) && Boolean(seen.add(nonce));
    const headers = signAcsRequest({ ...request, headers: { host: '127.0.0.1:9001' } }, key);
    expect(verifyAcsSignature({ ...request, headers }, () => 'wrong', { checkNonce })).toMatchObject({
      code: 'SignatureNotMatch',
    });
    expect(seen.size).toBe(0);
    expect(verifyAcsSignature({ ...request, headers }, lookup, { checkNonce })).toMatchObject({ ok: true });
    expect(verifyAcsSignature({ ...request, headers }, lookup, { checkNonce })).toMatchObject({
      ok: false,
      status: 400,
      code: 'SignatureNonceUsed',
    });
    // Signed by hand without x-acs-signature-nonce: valid, but replayable, so refused.
    const date = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const sha = (data: string) => createHash('sha256').update(data).digest('hex');
    const bare = { host: 'h', 'x-acs-content-sha256': sha(''), 'x-acs-date': date };
    const names = Object.keys(bare).sort();
    const canonical = [
      'GET',
      request.path,
      '',
      names.map((n) => `${n}:${bare[n as keyof typeof bare]}\n`).join(''),
      names.join(';'),
      sha(''),
    ].join('\n');
    const signature = createHmac('sha256', key.accessKeySecret)
      .update(`ACS3-HMAC-SHA256\n${sha(canonical)}`)
      .digest('hex');
    const noNonce = {
      ...bare,
      authorization: `ACS3-HMAC-SHA256 Credential=${key.accessKeyId},SignedHeaders=${names.join(';')},Signature=${signature}`,
    };
    expect(verifyAcsSignature({ ...request, headers: noNonce }, lookup)).toMatchObject({ ok: true });
    expect(verifyAcsSignature({ ...request, headers: noNonce }, lookup, { checkNonce })).toMatchObject({
      ok: false,
      status: 400,
      code: 'MissingRequiredHeader',
    });
  });
});

describe('a signed query string', () => {
  const lookup = (id: string) => (id === key.accessKeyId ? key.accessKeySecret : undefined);
  const path = '/2023-03-30/functions/echo/async-tasks';

  it('binds the values the control plane reads: `+` is a space there, so it is not `%2B`', () => {
    const headers = signAcsRequest({ method: 'GET', path, query: 'prefix=a%2Bb', headers: { host: 'h' } }, key);
    expect(verifyAcsSignature({ method: 'GET', path, query: 'prefix=a%2Bb', headers }, lookup)).toMatchObject({
      ok: true,
    });
    expect(new URLSearchParams('prefix=a+b').get('prefix')).toBe('a b');
    expect(verifyAcsSignature({ method: 'GET', path, query: 'prefix=a+b', headers }, lookup)).toMatchObject({
      ok: false,
      code: 'SignatureNotMatch',
    });
    const spaced = signAcsRequest({ method: 'GET', path, query: 'prefix=a+b', headers: { host: 'h' } }, key);
    expect(verifyAcsSignature({ method: 'GET', path, query: 'prefix=a%20b', headers: spaced }, lookup)).toMatchObject({
      ok: true,
    });
  });
});

describe('the dashboard signed in with HTTP Basic', () => {
  const invoke = (headers: Record<string, string>) =>
    fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/invocations`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'text/plain', ...headers },
      body: '{"requestContext":{"http":{"method":"POST","path":"/csrf"}}}',
    });

  it.each([
    ['a page of another site', { origin: 'https://evil.example' }],
    ['another port of the same host', { origin: 'http://127.0.0.1:1' }],
    ['a cross-site form post', { 'sec-fetch-site': 'cross-site' }],
  ])('refuses what %s makes the browser send with the cached credentials', async (_label, headers) => {
    const res = await invoke(headers);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ Code: 'AccessDenied', RequestId: expect.any(String) });
  });

  it('goes live in a browser signed in, its shared event stream included', async () => {
    const context = await launchChromium({
      httpCredentials: { username: key.accessKeyId, password: key.accessKeySecret },
    });
    try {
      const page = await context.newPage();
      await page.goto(`${emulator.controlUrl}/`);
      await expect.poll(() => page.locator('#live').textContent(), { timeout: 20_000 }).toBe('live');
      expect(await page.locator('#function').inputValue()).toBe('echo');
    } finally {
      await context.close();
    }
  });

  it('still serves the dashboard page itself, and tools that send no Origin', async () => {
    const host = new URL(emulator.controlUrl).host;
    expect((await invoke({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await invoke({})).status).toBe(200);
  });
});

describe('a request without valid credentials', () => {
  /** Sends the head of a POST announcing a 20 MB body and a few bytes of it; resolves to the status line. */
  function announceBigBody(authorization?: string): Promise<string> {
    const control = new URL(emulator.controlUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(control.port), control.hostname, () => {
        socket.write(
          'POST /2023-03-30/functions/echo/invocations HTTP/1.1\r\n' +
            `Host: ${control.host}\r\n` +
            (authorization ? `Authorization: ${authorization}\r\n` : '') +
            'Content-Length: 20000000\r\n\r\n{"n":',
        );
      });
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n');
        if (end >= 0) {
          socket.destroy();
          resolve(head.slice(0, end));
        }
      });
      socket.on('error', reject);
    });
  }

  it('is refused before its body is read, so it cannot make the control plane take in 32 MB', async () => {
    expect(await announceBigBody()).toBe('HTTP/1.1 400 Bad Request');
    expect(await announceBigBody(`Basic ${Buffer.from('dev-key:wrong').toString('base64')}`)).toBe(
      'HTTP/1.1 401 Unauthorized',
    );
    const unknownKey = 'ACS3-HMAC-SHA256 Credential=other-key,SignedHeaders=host,Signature=00';
    expect(await announceBigBody(unknownKey)).toBe('HTTP/1.1 403 Forbidden');
    // Neither a scheme that is not ACS3 nor the known key id (sent in clear) with a made-up
    // signature gets its body taken in: the signature is checked over the hash the request declares.
    expect(await announceBigBody('Bearer anything')).toBe('HTTP/1.1 400 Bad Request');
    const knownKey = 'ACS3-HMAC-SHA256 Credential=dev-key,SignedHeaders=host,Signature=00';
    expect(await announceBigBody(knownKey)).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  /** A raw connection to the control plane, and all it has answered so far. */
  async function rawControl() {
    const control = new URL(emulator.controlUrl);
    const socket = connect(Number(control.port), control.hostname);
    const state = { answer: '', closed: false };
    socket.on('data', (chunk: Buffer) => {
      state.answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      state.closed = true;
    });
    await new Promise((resolve) => socket.once('connect', resolve));
    return { socket, state, host: control.host };
  }

  it('is answered with the connection closed: the rest of a body it streams is not read and dropped', async () => {
    const { socket, state, host } = await rawControl();
    socket.write(
      `POST /2023-03-30/functions/echo/invocations HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const chunk = Buffer.from(`100000\r\n${'a'.repeat(0x100000)}\r\n`);
    let sent = 0;
    // 1 MB chunks while the control plane takes them: with the connection kept, it would read all 96.
    while (sent < 96 && !state.closed) {
      if (!socket.write(chunk)) {
        await new Promise((resolve) => {
          socket.once('drain', resolve);
          socket.once('close', resolve);
        });
      }
      sent++;
    }
    socket.destroy();
    expect(state.answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(state.answer.toLowerCase()).toContain('\r\nconnection: close\r\n');
    expect(sent).toBeLessThan(96);
  });

  it('is refused before a `100 Continue`, so its client never sends the body; a signed-in one gets it', async () => {
    const head = (authorization: string) =>
      `POST /2023-03-30/functions/echo/invocations HTTP/1.1\r\nHost: HOST\r\n${authorization}` +
      'Content-Type: application/json\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n';
    const refused = await rawControl();
    refused.socket.write(head('').replace('HOST', refused.host));
    await vi.waitFor(() => expect(refused.state.closed).toBe(true), { timeout: 10_000 });
    expect(refused.state.answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(refused.state.answer).not.toContain('100 Continue');

    const signedIn = await rawControl();
    signedIn.socket.write(head(`Authorization: ${basic}\r\n`).replace('HOST', signedIn.host));
    await vi.waitFor(() => expect(signedIn.state.answer).toBe('HTTP/1.1 100 Continue\r\n\r\n'), { timeout: 10_000 });
    signedIn.socket.write('{"n":1}');
    await vi.waitFor(() => expect(signedIn.state.answer).toMatch(/\r\n\r\nHTTP\/1\.1 200 OK\r\n/), { timeout: 10_000 });
    signedIn.socket.destroy();
  });
});
