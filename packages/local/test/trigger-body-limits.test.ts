import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, startEcho } from './helpers.js';

// An async call's body is held to the function's async limit (`async.maxAsyncPayloadBytes`, FC's
// 128 KB by default): one whose `Content-Length` is past it is refused before `100 Continue`,
// unread, naming the limit in force, as the engine refuses one it read; one past what the trigger
// reads of any body (32 MB) too.

let emulator: Emulator;
/** An fc-async handler whose own `async.maxAsyncPayloadBytes` is 1000. */
let small: Emulator;
beforeAll(async () => {
  emulator = await startEcho();
  small = await startEmulator({
    entry: fixture('small-async-limit.mjs'),
    name: 'small',
    port: 0,
    controlPort: 0,
    output: () => {},
  });
});
afterAll(() => Promise.all([emulator.close({ timeoutMs: 1000 }), small.close({ timeoutMs: 1000 })]));

/** Sends `head` on a fresh connection and collects what comes back until the server closes it. */
async function raw(head: string, base = emulator.triggerUrl): Promise<{ answer: string; closed: boolean }> {
  const url = new URL(base);
  const socket = connect(Number(url.port), url.hostname);
  const state = { answer: '', closed: false };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    state.answer += chunk;
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    state.closed = true;
  });
  socket.write(head.replace('HOST', `${url.hostname}:${url.port}`));
  await vi.waitFor(() => expect(state.closed).toBe(true), { timeout: 10_000 });
  return state;
}

/** The JSON of an answer's (chunked) body. */
const jsonOf = (answer: string) => JSON.parse(answer.match(/\{.*\}/)?.[0] ?? 'null');

const head = (extra: string, length = 33554433) =>
  `POST / HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n${extra}\r\n`;

describe('an async body over 32 MB', () => {
  it('is refused naming the async limit of 128 KB, not the sync one', async () => {
    const { answer } = await raw(head('X-Fc-Invocation-Type: Async\r\n'));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(jsonOf(answer)).toEqual({
      code: 'InvalidArgument',
      message: 'The async request body is 33554433 bytes, above the limit of 131072',
    });
  });

  it('is refused before `100 Continue`, so the client never sends it', async () => {
    const { answer } = await raw(head('X-Fc-Invocation-Type: Async\r\nExpect: 100-continue\r\n'));
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('131072');
  });

  it('keeps the sync limit in a sync call’s refusal, also before `100 Continue`', async () => {
    const { answer } = await raw(head('Expect: 100-continue\r\n'));
    expect(answer).not.toContain('100 Continue');
    expect(answer).toContain('The request body is larger than 33554432 bytes');
  });
});

describe('an async body between the async limit and 32 MB, by its Content-Length', () => {
  it('is refused 400 before `100 Continue`, its connection closed unread', async () => {
    const { answer, closed } = await raw(head('X-Fc-Invocation-Type: Async\r\nExpect: 100-continue\r\n', 200_000));
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.toLowerCase()).toContain('\r\nconnection: close\r\n');
    expect(closed).toBe(true);
    expect(jsonOf(answer)).toEqual({
      code: 'InvalidArgument',
      message: 'The async request body is 200000 bytes, above the limit of 131072',
    });
  });

  it('is refused with the answer the engine gives the same body once read (sent chunked)', async () => {
    const early = await raw(head('X-Fc-Invocation-Type: Async\r\nExpect: 100-continue\r\n', 200_000));
    const body = 'a'.repeat(200_000);
    const chunked = await raw(
      `POST / HTTP/1.1\r\nHost: HOST\r\nX-Fc-Invocation-Type: Async\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(chunked.answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(jsonOf(early.answer)).toEqual(jsonOf(chunked.answer));
  });

  it('gets `100 Continue` when within the limit, then its 202', async () => {
    const url = new URL(emulator.triggerUrl);
    const socket = connect(Number(url.port), url.hostname);
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.write(
      `POST / HTTP/1.1\r\nHost: ${url.host}\r\nX-Fc-Invocation-Type: Async\r\nContent-Length: ${128 * 1024}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    await vi.waitFor(() => expect(answer).toBe('HTTP/1.1 100 Continue\r\n\r\n'), { timeout: 10_000 });
    socket.write('a'.repeat(128 * 1024));
    await vi.waitFor(() => expect(answer).toMatch(/\r\n\r\nHTTP\/1\.1 202 Accepted\r\n/), { timeout: 10_000 });
    socket.destroy();
  });
});

describe('a function whose fc-async handler sets async.maxAsyncPayloadBytes (1000)', () => {
  it('refuses a body past it before `100 Continue`, naming 1000', async () => {
    const { answer } = await raw(
      head('X-Fc-Invocation-Type: Async\r\nExpect: 100-continue\r\n', 1001),
      small.triggerUrl,
    );
    expect(answer).not.toContain('100 Continue');
    expect(jsonOf(answer)).toEqual({
      code: 'InvalidArgument',
      message: 'The async request body is 1001 bytes, above the limit of 1000',
    });
  });

  it('names 1000, not FC’s default, for a body past 32 MB', async () => {
    const declared = await raw(head('X-Fc-Invocation-Type: Async\r\n'), small.triggerUrl);
    expect(jsonOf(declared.answer)).toEqual({
      code: 'InvalidArgument',
      message: 'The async request body is 33554433 bytes, above the limit of 1000',
    });
  });

  it('still takes a sync body past 1000 (the async limit is not the sync one)', async () => {
    const res = await fetch(small.triggerUrl, { method: 'POST', body: 'a'.repeat(5000) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});

describe('a body within the limits sent with Expect: 100-continue', () => {
  it('gets `100 Continue` once the trigger wants it, then the answer', async () => {
    const url = new URL(emulator.triggerUrl);
    const socket = connect(Number(url.port), url.hostname);
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.write(
      `POST / HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    await vi.waitFor(() => expect(answer).toBe('HTTP/1.1 100 Continue\r\n\r\n'), { timeout: 10_000 });
    socket.write('{}');
    await vi.waitFor(() => expect(answer).toMatch(/\r\n\r\nHTTP\/1\.1 200 OK\r\n/), { timeout: 10_000 });
    socket.destroy();
  });
});

/**
 * Sends a request whose head declares `length` body bytes, waits for the answer, then sends the
 * whole body as a browser's upload or fetch does (they send no `Expect: 100-continue`), and
 * collects what comes back and any socket error until the connection closes.
 */
async function uploadPastAnswer(port: number, head: string, length: number) {
  // Half-open allowed: a server's FIN does not end the client's own writing, as in a browser.
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const state = { answer: '', closed: false, error: undefined as string | undefined };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    state.answer += chunk;
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    state.error = error.code ?? error.message;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  socket.write(head);
  await vi.waitFor(() => expect(state.answer).toMatch(/\{.*\}/), { timeout: 10_000 });
  // The refusal is in; the client is still sending (a fast one has most of its body in flight).
  const chunk = Buffer.alloc(1 << 20);
  for (let sent = 0; sent < length && !state.closed; sent += chunk.length) {
    if (!socket.write(chunk.subarray(0, Math.min(chunk.length, length - sent)))) {
      await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
    }
  }
  socket.end();
  await vi.waitFor(() => expect(state.closed).toBe(true), { timeout: 10_000 });
  return state;
}

describe('a body refused before it was read, sent whole all the same', () => {
  // Closing a connection with body bytes unread resets it: a client still writing (fetch, Node's
  // http) then failed with EPIPE / ECONNRESET without reading the 400 sent before it.
  it('lets the trigger client finish its upload and read the 400, then closes the connection', async () => {
    const url = new URL(emulator.triggerUrl);
    const length = 33_554_433;
    const head = `PUT / HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`;
    const state = await uploadPastAnswer(Number(url.port), head, length);
    expect(state.error).toBeUndefined();
    expect(state.answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(state.answer.toLowerCase()).toContain('connection: close');
    expect(state.answer).toContain('The request body is larger than 33554432 bytes');
  });

  it('does the same for InvokeFunction on the control port', async () => {
    const url = new URL(emulator.controlUrl);
    const length = 33_554_433;
    const head = `POST /2023-03-30/functions/echo/invocations HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${length}\r\n\r\n`;
    const state = await uploadPastAnswer(Number(url.port), head, length);
    expect(state.error).toBeUndefined();
    expect(state.answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(state.answer).toContain('"Code":"EntityTooLarge"');
  });
});
