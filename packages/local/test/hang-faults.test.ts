import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PENDING, within } from '@fc-async/test-kit/wait';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { redisServer, startEcho } from './helpers.js';

// Peers that hold a connection open and go quiet: the emulator's close() must not wait for them.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function emulator(): Promise<Emulator> {
  const e = await startEcho();
  cleanups.push(() => within(e.close({ timeoutMs: 500 }), 10_000));
  return e;
}

/** A raw connection to `url`'s host and port that records whether and how it ended. */
async function rawSocket(url: string): Promise<Socket & { ended: Promise<string> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  const ended = new Promise<string>((resolve) => {
    socket.once('close', () => resolve('closed'));
    socket.once('error', () => undefined);
  });
  return Object.assign(socket, { ended });
}

describe('emulator close() with peers that went quiet', () => {
  it('ends with a body still owed, an idle keep-alive, an open event stream and an unread large answer', async () => {
    const e = await emulator();
    const host = new URL(e.triggerUrl).host;
    // Headers, then 10 of the 100 body bytes it announced, then nothing.
    const stalled = await rawSocket(e.triggerUrl);
    stalled.write(`POST /echo HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 100\r\n\r\n0123456789`);
    // A finished request on a keep-alive connection, left open.
    const idle = await rawSocket(e.triggerUrl);
    idle.write(`GET /echo HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
    await once(idle, 'data');
    // The dashboard's event stream.
    const stream = await rawSocket(e.controlUrl);
    stream.write(`GET /api/events HTTP/1.1\r\nhost: ${new URL(e.controlUrl).host}\r\n\r\n`);
    await once(stream, 'data');
    // A large synchronous answer the client never reads (its receive window fills up).
    const unread = await rawSocket(e.triggerUrl);
    unread.pause();
    const body = 'x'.repeat(8 * 1024 * 1024);
    unread.write(
      `POST /echo HTTP/1.1\r\nhost: ${host}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));

    expect(
      await within(
        e.close({ timeoutMs: 500 }).then(() => 'closed'),
        10_000,
      ),
    ).toBe('closed');
    unread.resume(); // reads what was sent, up to the end the emulator put
    // The request still owing its body was answered 503 (the shutdown's end), then its connection closed.
    let answer = '';
    stalled.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const ends = await Promise.all([stalled, idle, stream, unread].map((socket) => within(socket.ended, 2000)));
    expect(ends).toEqual(['closed', 'closed', 'closed', 'closed']);
    expect(answer).toMatch(/^HTTP\/1\.1 503 [\s\S]*"ServiceUnavailable"/);
  }, 20_000);
});

const TRICKLE_SERVER = `
import { createServer } from 'node:http';
createServer((req, res) => {
  req.resume();
  res.on('close', () => clearInterval(res.timer));
  if (req.url.endsWith('/trickle')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.timer = setInterval(() => res.write('.'), 100);
    return;
  }
  if (req.url.endsWith('/silent')) return; // never answers
  res.end('ok');
}).listen(Number(process.env.FC_CUSTOM_LISTEN_PORT), '127.0.0.1');
`;

async function customRuntime(): Promise<Emulator> {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-hang-runtime-'));
  writeFileSync(join(root, 'server.mjs'), TRICKLE_SERVER);
  writeFileSync(
    join(root, 's.yaml'),
    `edition: 3.0.0
name: hang
resources:
  quiet:
    component: fc3
    props:
      functionName: quiet
      region: cn-shanghai
      runtime: custom.debian10
      timeout: 1
      code: ./
      customRuntimeConfig: { command: [node, ./server.mjs] }
      triggers: [{ triggerName: http, triggerType: http, triggerConfig: { authType: anonymous, methods: [GET, POST] } }]
`,
  );
  const e = await startEmulator({ config: join(root, 's.yaml'), port: 0, controlPort: 0, output: () => {} });
  cleanups.push(async () => {
    await within(e.close({ timeoutMs: 500 }), 10_000);
    rmSync(root, { recursive: true, force: true });
  });
  return e;
}

describe('a custom runtime that goes quiet mid-answer', () => {
  it.each(['/silent', '/trickle'])(
    'a sync call to %s ends at the timeout with 504 FunctionTimeout',
    async (path) => {
      const e = await customRuntime();
      const res = await within(fetch(`${e.triggerUrl}/quiet${path}`), 8000);
      if (res === PENDING) expect.fail('no answer within 8 s');
      expect({ status: res.status, body: await res.json() }).toEqual({
        status: 504,
        body: {
          code: 'FunctionTimeout',
          message: 'quiet did not answer within its timeout of 1 s',
        },
      });
    },
    20_000,
  );
});

describe('fc-async dev --redis with Redis frozen (its connections open)', () => {
  it('the trigger and the task API answer 503 RedisUnavailable, and close() ends', async () => {
    const redis = await redisServer((stop) => cleanups.push(stop));
    const e = await startEcho({ redis: redis.url });
    cleanups.unshift(() => within(e.close({ timeoutMs: 500 }), 15_000));
    const invoke = (taskId: string) =>
      fetch(`${e.triggerUrl}/echo`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
        body: '{}',
      });
    expect((await invoke('before_freeze')).status).toBe(202);
    redis.child.kill('SIGSTOP');
    // Both wait for Redis at once (each for the connection's command timeout).
    const [refused, got] = await Promise.all([
      within(invoke('during_freeze'), 12_000),
      within(fetch(`${e.controlUrl}/2023-03-30/functions/echo/async-tasks/not_cached`), 12_000),
    ]);
    if (refused === PENDING || got === PENDING) expect.fail('an async call or GetAsyncTask got no answer within 12 s');
    expect({ status: refused.status, code: ((await refused.json()) as { code: string }).code }).toEqual({
      status: 503,
      code: 'RedisUnavailable',
    });
    expect({ status: got.status, code: ((await got.json()) as { Code: string }).Code }).toEqual({
      status: 503,
      code: 'RedisUnavailable',
    });
    expect(
      await within(
        e.close({ timeoutMs: 500 }).then(() => 'closed'),
        15_000,
      ),
    ).toBe('closed');
  }, 29_000);
});
