import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Emulator } from '../src/index.js';
import { startEcho } from './helpers.js';

// An async call's body is held to FC's async limit (128 KB): one past what the trigger reads of
// any body (32 MB) is refused naming that limit, and before `100 Continue` when its length says so.

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEcho();
});
afterAll(() => emulator.close({ timeoutMs: 1000 }));

/** Sends `head` on a fresh connection and collects what comes back until the server closes it. */
async function raw(head: string): Promise<{ answer: string; closed: boolean }> {
  const url = new URL(emulator.triggerUrl);
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

const head = (extra: string) =>
  `POST / HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/octet-stream\r\nContent-Length: 33554433\r\n${extra}\r\n`;

describe('an async body over 32 MB', () => {
  it('is refused naming the async limit of 128 KB, not the sync one', async () => {
    const { answer } = await raw(head('X-Fc-Invocation-Type: Async\r\n'));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    // The JSON of the (chunked) body.
    const body = JSON.parse(answer.match(/\{.*\}/)?.[0] ?? 'null');
    expect(body).toEqual({
      code: 'InvalidArgument',
      message: "The async request body is 33554433 bytes, above FC's limit of 131072 bytes (128 KB) for an async call",
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
