import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requestFromCall } from '../src/event.js';
import type { LocalFunction } from '../src/function.js';
import { type Emulator, startEmulator } from '../src/index.js';
import { createEmulatorLog } from '../src/log.js';
import { FunctionRegistry } from '../src/registry.js';
import { startEcho, waitFor } from './helpers.js';

// Found by mutation testing (session 19): behaviour of the HTTP trigger no other test held.

/** Just what routing reads of a function. */
const fn = (name: string, http = true) => ({ spec: { name, http: http ? {} : undefined } }) as unknown as LocalFunction;

describe('routing a trigger request', () => {
  const [a, b, events] = [fn('a'), fn('b'), fn('events', false)];
  const registry = new FunctionRegistry([a, b, events]);

  it('takes the function from the authority of an absolute-form target, not from Host (RFC 9112 3.2.2)', () => {
    expect(registry.route('a.localhost:9000', 'http://b.localhost:9000/x?q=1')).toEqual({ fn: b, url: '/x?q=1' });
  });

  it('finds no function at the path prefix of an event function (it has no HTTP trigger)', () => {
    expect(registry.route('127.0.0.1:9000', '/events/x')).toBeUndefined();
    expect(registry.route(undefined, '/events')).toBeUndefined();
  });
});

describe('the async call headers on the trigger', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEcho();
  });
  afterAll(() => emulator.close());

  it("takes FC 2.0's X-Fc-Stateful-Async-Invocation-Id as the task id, as FC 3.0's X-Fc-Async-Task-Id", async () => {
    const res = await fetch(`${emulator.triggerUrl}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-stateful-async-invocation-id': 'm19_fc2_task' },
      body: '{}',
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-fc-async-task-id')).toBe('m19_fc2_task');
    expect(res.headers.get('x-fc-request-id')).toMatch(/^1-/);
  });
});

describe('the text log', () => {
  it('names the task when its id is not the request id, and only then', () => {
    const out: string[] = [];
    const log = createEmulatorLog({ write: (text) => out.push(text) });
    const line = { function: 'jobs', type: 'Async', status: 202, method: 'POST', path: '/', durationMs: 1 } as const;
    log.invocation({ ...line, requestId: '1-64f6d6e7-aaaa', taskId: 'order_42', via: 'http' });
    log.invocation({ ...line, requestId: '1-64f6d6e7-bbbb', taskId: '1-64f6d6e7-bbbb', via: 'http' });
    log.flush();
    const [named, plain] = out.join('').trim().split('\n');
    expect(named).toMatch(/ 1-64f6d6e7-aaaa task order_42$/);
    expect(plain).toMatch(/ 1-64f6d6e7-bbbb$/);
  });

  it('stamps each line HH:MM:SS.mmm, the milliseconds in three digits', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date('2026-12-01T00:00:07.005Z'));
      const out: string[] = [];
      const log = createEmulatorLog({ write: (text) => out.push(text) });
      log.notice('ready');
      log.flush();
      expect(out.join('')).toMatch(/^00:00:07\.005 INFO {2}ready\n$/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('quotes an error field as JSON text, so that its message cannot pass for more fields', () => {
    const out: string[] = [];
    const log = createEmulatorLog({ write: (text) => out.push(text) });
    log.logger.error('trigger request failed', { function: 'jobs', error: new TypeError('boom status=200') });
    expect(out.join('')).toContain(' function=jobs error="TypeError: boom status=200"');
  });
});

/** Every byte a raw connection receives until it closes. */
function collect(socket: ReturnType<typeof connect>): Promise<string> {
  let out = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    out += chunk;
  });
  socket.on('error', () => {});
  return new Promise((resolve) => socket.on('close', () => resolve(out)));
}

describe('shutting down with requests under way', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-m19-closing-'));
  const gate = globalThis as { m19Started?: () => void; m19Gate?: Promise<void>; m19Late?: () => void };
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(
    join(root, 'gated.mjs'),
    `export const handler = async (event) => {
  const path = JSON.parse(event).rawPath;
  if (path === '/wait') { globalThis.m19Started(); await globalThis.m19Gate; } else globalThis.m19Late?.();
  return { statusCode: 200, body: 'answered ' + path };
};\n`,
  );

  it('is answered 503 ServiceUnavailable on a keep-alive connection, after the answer before it', async () => {
    let release = () => {};
    gate.m19Gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started = new Promise<void>((resolve) => {
      gate.m19Started = resolve;
    });
    const late = new Promise<void>((resolve) => {
      gate.m19Late = resolve;
    });
    const emulator = await startEmulator({
      output: () => {},
      port: 0,
      controlPort: 0,
      entry: join(root, 'gated.mjs'),
      name: 'gated',
    });
    const { hostname, port } = new URL(emulator.triggerUrl);
    const socket = connect(Number(port), hostname);
    const received = collect(socket);
    socket.write('GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await started;
    const closed = emulator.close({ timeoutMs: 10_000 });
    socket.write('GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n');
    // Until the second request has been read (its function ran, or a moment passed), so that it
    // arrives while the first is still under way.
    await Promise.race([late, new Promise((resolve) => setTimeout(resolve, 300))]);
    release();
    await closed;
    const text = await received;
    expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 503']);
    expect(text).toContain('answered /wait');
    expect(text).toContain('{"code":"ServiceUnavailable","message":"The emulator is shutting down"}');
    expect(text).not.toContain('answered /late');
    // It tells the client the connection ends with it: no request is to follow on it.
    const refusal = text.slice(text.indexOf('HTTP/1.1 503'));
    expect(refusal.slice(0, refusal.indexOf('\r\n\r\n')).toLowerCase()).toContain('\r\nconnection: close');
    // And when to try again, as every other 503 of an async call says (a --watch restart is back soon).
    expect(refusal.slice(0, refusal.indexOf('\r\n\r\n')).toLowerCase()).toContain('\r\nretry-after: 1');
    delete gate.m19Gate;
    delete gate.m19Started;
    delete gate.m19Late;
  });

  it('waits for every sync call under way, not only the first to end, before it cuts any', async () => {
    const pair = globalThis as { m19Pair?: Record<string, { started: () => void; gate: Promise<void> }> };
    const releases: Record<string, () => void> = {};
    const starts: Promise<void>[] = [];
    pair.m19Pair = {};
    for (const path of ['/one', '/two']) {
      let started = () => {};
      starts.push(
        new Promise<void>((resolve) => {
          started = resolve;
        }),
      );
      const gate = new Promise<void>((resolve) => {
        releases[path] = resolve;
      });
      pair.m19Pair[path] = { started, gate };
    }
    writeFileSync(
      join(root, 'pair.mjs'),
      `export const handler = async (event) => {
  const path = JSON.parse(event).rawPath;
  globalThis.m19Pair[path].started();
  await globalThis.m19Pair[path].gate;
  return { statusCode: 200, body: 'answered ' + path };
};\n`,
    );
    const emulator = await startEmulator({
      output: () => {},
      port: 0,
      controlPort: 0,
      entry: join(root, 'pair.mjs'),
      name: 'pair',
    });
    const one = fetch(`${emulator.triggerUrl}/one`);
    const two = fetch(`${emulator.triggerUrl}/two`);
    await Promise.all(starts);
    const closed = emulator.close({ timeoutMs: 10_000 });
    releases['/one']?.();
    const first = await one;
    expect([first.status, await first.text()]).toEqual([200, 'answered /one']);
    releases['/two']?.();
    const second = await two;
    expect([second.status, await second.text()]).toEqual([200, 'answered /two']);
    await closed;
    delete pair.m19Pair;
  });

  it('logs no error when the function answers a call the shutdown has already answered 503', async () => {
    let release = () => {};
    gate.m19Gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started = new Promise<void>((resolve) => {
      gate.m19Started = resolve;
    });
    const lines: string[] = [];
    const emulator = await startEmulator({
      output: (text: string) => lines.push(text),
      port: 0,
      controlPort: 0,
      entry: join(root, 'gated.mjs'),
      name: 'gated',
    });
    const answer = fetch(`${emulator.triggerUrl}/wait?token=s3cret`);
    await started;
    await emulator.close({ timeoutMs: 50 });
    expect((await answer).status).toBe(503);
    // The function answers after all: its answer has nowhere to go, and is no fault of the emulator.
    release();
    // Its invocation line is written in the turn its answer is handed to the trigger's batch, which
    // writes it before the log's buffer flushes.
    await waitFor(() => (/ Sync +\d{3} +GET \/wait /.test(lines.join('')) ? true : undefined));
    expect(lines.join('')).not.toContain('trigger request failed');
    // The warning about the cut call names its path, not its query (which may hold a token).
    expect(lines.join('')).toContain('request=GET /wait');
    expect(lines.join('')).not.toContain('s3cret');
    delete gate.m19Gate;
    delete gate.m19Started;
  });
});

/** What a raw request on a new connection gets back, until the server closes it. */
function exchange(url: string, data: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const received = collect(socket);
  socket.write(data);
  return received;
}

/** The lower-cased head of a raw answer. */
const headOf = (text: string) => text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase();

describe('answers on the wire', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-m19-wire-'));
  let emulator: Emulator;
  beforeAll(async () => {
    writeFileSync(
      join(root, 'cache.mjs'),
      "export const handler = async () => ({ statusCode: 304, headers: { etag: '\"v1\"' }, body: '' });\n",
    );
    emulator = await startEmulator({ output: () => {}, port: 0, controlPort: 0, entry: join(root, 'cache.mjs') });
  });
  afterAll(async () => {
    await emulator.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('sends a 304 without a Content-Length (a length of 0 would not be its GET’s) and without a body', async () => {
    const text = await exchange(
      emulator.triggerUrl,
      'GET /page HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: "v1"\r\nConnection: close\r\n\r\n',
    );
    expect(text.startsWith('HTTP/1.1 304 ')).toBe(true);
    expect(headOf(text)).toContain('\r\netag: "v1"');
    expect(headOf(text)).not.toContain('content-length');
    expect(text.endsWith('\r\n\r\n')).toBe(true);
  });

  it('closes the connection after a malformed request, and says so in its JSON refusal', async () => {
    const text = await exchange(
      emulator.triggerUrl,
      'POST /job HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1x\r\n\r\n',
    );
    expect(text.startsWith('HTTP/1.1 400 ')).toBe(true);
    expect(headOf(text)).toContain('\r\nconnection: close');
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'InvalidArgument' });
  });
});

describe('refusals that name what the client sent', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEcho();
  });
  afterAll(() => emulator.close());

  it('quotes at most the start of an unsupported Expect header in its 417', async () => {
    const expectation = `x-${'a'.repeat(4000)}`;
    const text = await exchange(
      emulator.triggerUrl,
      `GET / HTTP/1.1\r\nHost: localhost\r\nExpect: ${expectation}\r\nConnection: close\r\n\r\n`,
    );
    expect(text.startsWith('HTTP/1.1 417 ')).toBe(true);
    // Its body may come chunked.
    const body = JSON.parse(text.match(/\{.*\}/)?.[0] ?? 'null') as { code: string; message: string };
    expect(body.code).toBe('ExpectationFailed');
    expect(body.message).toContain('Expect: x-aaaa');
    expect(body.message.length).toBeLessThan(200);
  });

  it('names the async limit, not the sync one, for a chunked async body past 32 MB', async () => {
    const { hostname, port } = new URL(emulator.triggerUrl);
    const socket = connect(Number(port), hostname);
    const received = collect(socket);
    socket.write(
      'POST / HTTP/1.1\r\nHost: localhost\r\nX-Fc-Invocation-Type: Async\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    );
    const chunk = Buffer.alloc(1024 * 1024, 97);
    for (let i = 0; i < 33; i++) socket.write(`100000\r\n${chunk}\r\n`);
    socket.write('0\r\n\r\n');
    const text = await received;
    expect(text.startsWith('HTTP/1.1 400 ')).toBe(true);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual({
      code: 'InvalidArgument',
      message: 'The async request body is over 33554432 bytes, above the limit of 131072',
    });
  });
});

describe("FC's common headers on a trigger call", () => {
  it('tells the function its name, handler, memory, region, account, qualifier, control path and retry count', () => {
    const identity = {
      name: 'jobs',
      handler: 'index.handler',
      region: 'cn-hangzhou',
      accountId: '1234',
      qualifier: 'LATEST',
      memorySize: 512,
      timeout: 60,
    };
    const call = { method: 'GET', url: '/', headers: { host: 'localhost' }, body: Buffer.alloc(0) };
    const headers = requestFromCall(call, identity, '1-64f6d6e7-e01edb1cce58240ed59b59d9')?.headers;
    expect(headers).toMatchObject({
      'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9',
      'x-fc-function-name': 'jobs',
      'x-fc-function-handler': 'index.handler',
      'x-fc-function-memory': '512',
      'x-fc-region': 'cn-hangzhou',
      'x-fc-account-id': '1234',
      'x-fc-qualifier': 'LATEST',
      'x-fc-control-path': '/http-invoke',
      'x-fc-retry-count': '0',
    });
  });
});
