import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toApiError } from '../src/control/respond.js';
import { type Emulator, startEmulator } from '../src/index.js';
import type { EmulatorLog } from '../src/log.js';
import { $FC, fixture, sdk, sdkError, waitFor } from './helpers.js';

const quiet = { output: () => {}, port: 0, controlPort: 0 };
const key = { accessKeyId: 'dev-key', accessKeySecret: 'dev-secret' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const listPath = '/2023-03-30/functions/echo/async-tasks';

/** A raw request, so that Host and Origin can be set. */
function raw(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('control plane on loopback with an access key', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ ...quiet, entry: fixture('echo-handler.mjs'), name: 'echo', credentials: key });
  });
  afterAll(() => emulator.close());

  it('accepts the official SDK signing with that key', async () => {
    const page = await sdk(emulator.controlUrl, key).listAsyncTasks(
      'echo',
      new $FC.ListAsyncTasksRequest({ limit: 5 }),
    );
    expect(page.statusCode).toBe(200);
  });

  it.each([
    ['a wrong secret', { accessKeyId: 'dev-key', accessKeySecret: 'nope' }, 'SignatureNotMatch'],
    ['an unknown key', { accessKeyId: 'other', accessKeySecret: 'dev-secret' }, 'InvalidAccessKeyID'],
  ])('refuses %s with 403 like FC', async (_label, credentials, code) => {
    const error = await sdkError(
      sdk(emulator.controlUrl, credentials).listAsyncTasks('echo', new $FC.ListAsyncTasksRequest({})),
    );
    expect(error).toMatchObject({ code, statusCode: 403 });
  });

  it('lets unsigned requests from this machine through (the dashboard, curl)', async () => {
    expect((await fetch(`${emulator.controlUrl}${listPath}`)).status).toBe(200);
  });

  it("lets the dashboard's own page through, served over http or https (a TLS proxy in front)", async () => {
    const host = new URL(emulator.controlUrl).host;
    for (const origin of [`http://${host}`, `https://${host}`]) {
      const res = await raw(`${emulator.controlUrl}${listPath}`, { origin, 'sec-fetch-site': 'same-origin' });
      expect(res.status, origin).toBe(200);
    }
  });

  it.each([
    ['another site', { origin: 'https://evil.example' }],
    ['a cross-site fetch', { 'sec-fetch-site': 'cross-site' }],
    ['a name that is not loopback (DNS rebinding)', { host: 'evil.example' }],
    ['a name that starts with a loopback address', { host: '127.0.0.1.evil.example' }],
    ['a name that starts like localhost', { host: 'localhost.evil.example:80' }],
    ['a name that ends like localhost', { host: 'evil-localhost' }],
  ])('refuses requests from %s', async (_label, headers) => {
    const res = await raw(`${emulator.controlUrl}${listPath}`, headers);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ Code: 'AccessDenied' });
  });
});

describe('control plane that requires signatures', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      ...quiet,
      entry: fixture('echo-handler.mjs'),
      name: 'echo',
      credentials: key,
      requireSignatures: true,
    });
  });
  afterAll(() => emulator.close());

  it('serves the SDK signing with the key and refuses unsigned API calls', async () => {
    expect(
      (await sdk(emulator.controlUrl, key).listAsyncTasks('echo', new $FC.ListAsyncTasksRequest({}))).statusCode,
    ).toBe(200);
    const unsigned = await fetch(`${emulator.controlUrl}${listPath}`);
    expect(unsigned.status).toBe(400);
    expect(await unsigned.json()).toMatchObject({ Code: 'MissingRequiredHeader' });
  });

  it('asks a browser to sign in to the dashboard with the key, through HTTP Basic', async () => {
    const page = await fetch(`${emulator.controlUrl}/`);
    expect(page.status).toBe(401);
    expect(page.headers.get('www-authenticate')).toBe('Basic realm="fc-async"');
    const wrong = await fetch(`${emulator.controlUrl}/`, { headers: { authorization: basic('dev-key', 'nope') } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${emulator.controlUrl}/`, {
      headers: { authorization: basic('dev-key', 'dev-secret') },
    });
    expect(right.status).toBe(200);
    const api = await fetch(`${emulator.controlUrl}${listPath}`, {
      headers: { authorization: basic('dev-key', 'dev-secret') },
    });
    expect(api.status).toBe(200);
  });

  it('refuses to start without a key', async () => {
    await expect(
      startEmulator({ ...quiet, entry: fixture('echo-handler.mjs'), requireSignatures: true }),
    ).rejects.toThrow(/FC_ASYNC_ACCESS_KEY_ID/);
  });
});

describe('dashboard endpoints', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ ...quiet, entry: fixture('echo-handler.mjs'), name: 'echo' });
  });
  afterAll(() => emulator.close());

  it('serves the page and its files from the package, with a strict CSP', async () => {
    const page = await fetch(`${emulator.controlUrl}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('/assets/dashboard.js');
    expect(html).not.toMatch(/https?:\/\//);
    const script = await fetch(`${emulator.controlUrl}/assets/dashboard.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${emulator.controlUrl}/assets/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${emulator.controlUrl}/assets/nope.js`)).status).toBe(404);
  });

  it('serves the page and its stream unframeable, sending no Referer, and checked again after an upgrade', async () => {
    for (const path of ['/', '/assets/dashboard.js', '/api/events']) {
      const controller = new AbortController();
      const res = await fetch(`${emulator.controlUrl}${path}`, { signal: controller.signal });
      // Another site cannot frame the dashboard (clickjacking its Stop buttons).
      expect(res.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
      // Its address (the control port) stays out of the requests of any link it shows.
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      // An upgraded package's page and scripts are not taken from the browser's cache.
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      controller.abort();
    }
  });

  it('lists the functions', async () => {
    const body = await (await fetch(`${emulator.controlUrl}/api/functions`)).json();
    expect(body).toEqual({ functions: [{ name: 'echo', http: true, path: '/', kind: 'fc-handler' }] });
  });

  it('streams task events as Server-Sent Events', async () => {
    const controller = new AbortController();
    const res = await fetch(`${emulator.controlUrl}/api/events`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const events = waitFor(async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return text.includes('"type":"finished"') && text.includes('"type":"attempt"') ? text : undefined;
    });
    await fetch(`${emulator.triggerUrl}/x`, {
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'sse_1' },
    });
    const received = await events;
    controller.abort();
    const data = received
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
    // `started` too: the page shows a delayed task or a retry as Running when it starts, not only when it ends.
    expect(data.map((d) => d.type).sort()).toEqual(['accepted', 'attempt', 'finished', 'started']);
    expect(data[0]).toMatchObject({ function: 'echo', taskId: 'sse_1' });
    expect(received).not.toContain('payload');
  });

  it('lists tasks without their answers with returnPayload=false (the dashboard), with them by default', async () => {
    await fetch(`${emulator.triggerUrl}/answer`, {
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'answered_1' },
    });
    const listed = async (extra: string) =>
      (
        (await (await fetch(`${emulator.controlUrl}${listPath}?prefix=answered_${extra}`)).json()) as {
          tasks: { status: string; returnPayload?: string }[];
        }
      ).tasks[0];
    await waitFor(async () => ((await listed(''))?.status === 'Succeeded' ? true : undefined));
    expect((await listed(''))?.returnPayload).toBeTruthy();
    const bare = await listed('&returnPayload=false');
    expect(bare).toMatchObject({ status: 'Succeeded' });
    expect(bare).not.toHaveProperty('returnPayload');
    expect((await fetch(`${emulator.controlUrl}${listPath}?returnPayload=maybe`)).status).toBe(400);
  });
});

describe('an unexpected error in the control plane', () => {
  it('answers 500 InternalError without its message or stack, and logs it', () => {
    const logged: unknown[] = [];
    const log = { logger: { error: (_: string, fields: unknown) => logged.push(fields) } } as unknown as EmulatorLog;
    const error = new Error('EACCES: permission denied, open /home/dev/.fc-async/tasks.db');
    const answer = toApiError(error, log);
    expect([answer.status, answer.code, answer.message]).toEqual([500, 'InternalError', 'Internal error']);
    expect(logged).toHaveLength(1);
  });
});
