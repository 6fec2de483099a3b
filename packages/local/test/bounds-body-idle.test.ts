import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture } from './helpers.js';

// An upload that declares a large body and then stops sending held its whole Content-Length of
// the emulator's body budget until Node's 5-minute requestTimeout: nine of them answered every
// other request with a body 503 BodyBudgetExceeded. A body that sends nothing for the budget's
// idle bound now gets 408 RequestTimeout and gives its bytes back. The bound (30 s) is made short
// here through the budget's internal `idleMs`.

vi.mock('../src/body.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/body.js')>();
  class ShortIdleBudget extends actual.BodyBudget {
    constructor(limit: number) {
      super(limit, 1000);
    }
  }
  return { ...actual, BodyBudget: ShortIdleBudget };
});

const MiB = 1024 * 1024;
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 20 });

/** A raw connection that sent `head` and the start of a body, then nothing; collects what comes back. */
function upload(port: number, head: string, start: string) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  socket.write(`${head}\r\n\r\n${start}`);
  return { socket, received: () => received };
}

describe('the emulator with uploads that stop sending', () => {
  let emulator: Emulator;
  let triggerPort: number;
  let controlPort: number;
  beforeAll(async () => {
    // The default budget: 256 MiB, eight bodies of FC's 32 MB.
    emulator = await startEmulator({
      entry: fixture('bounds-size-handler.mjs'),
      name: 'size',
      port: 0,
      controlPort: 0,
      output: () => {},
    });
    triggerPort = Number(new URL(emulator.triggerUrl).port);
    controlPort = Number(new URL(emulator.controlUrl).port);
  });
  afterAll(() => emulator.close({ timeoutMs: 1000 }));

  const small = () =>
    fetch(`${emulator.triggerUrl}/`, { method: 'POST', body: 'ten bytes!', headers: { 'content-type': 'text/plain' } });
  const invoke = () =>
    fetch(`${emulator.controlUrl}/2023-03-30/functions/size/invocations`, { method: 'POST', body: 'ten bytes!' });
  const declaring = (bytes: number, path = '/') =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${bytes}`;

  it('answers 408 to nine idle 32 MiB uploads and serves new bodies while their clients keep them open', async () => {
    // A request already taken: its 32 MiB body whole, its invocation running (its body counted).
    const accepted = upload(triggerPort, declaring(32 * MiB, '/hold'), 'a'.repeat(32 * MiB));
    await poll(async () => await (await fetch(`${emulator.triggerUrl}/status`)).json()).toEqual({ holding: true });

    const idle: ReturnType<typeof upload>[] = [];
    try {
      idle.push(
        ...Array.from({ length: 9 }, (_, i) =>
          i % 3 === 2
            ? upload(controlPort, declaring(32 * MiB, '/2023-03-30/functions/size/invocations'), 'x')
            : upload(triggerPort, declaring(32 * MiB), 'x'),
        ),
      );
      // Seven of them fill the budget (256 MiB): those past it are refused from their head.
      await poll(() => idle.filter((u) => /^HTTP\/1\.1 503 /.test(u.received())).length).toBeGreaterThan(0);
      for (const u of idle.filter((u) => u.received().startsWith('HTTP/1.1 503 '))) {
        expect(u.received()).toMatch(/BodyBudgetExceeded/);
      }

      // The rest stop sending, their clients never closing them: new bodies are served again.
      await poll(async () => (await small()).status).toBe(200);
      expect(await (await small()).json()).toEqual({ length: 10 });
      expect((await invoke()).status).toBe(200);

      // Each idle upload was answered 408, its bytes given back.
      await poll(() => idle.every((u) => /^HTTP\/1\.1 (408|503) /.test(u.received()))).toBe(true);
      const timedOut = idle.filter((u) => u.received().startsWith('HTTP/1.1 408 '));
      expect(timedOut.length).toBeGreaterThanOrEqual(7);
      for (const u of timedOut) {
        expect(u.received()).toMatch(/\r\nconnection: close\r\n/i);
        expect(u.received()).toMatch(/"(code|Code)":"RequestTimeout"/);
        expect(u.received()).toMatch(/no byte of the request body for 1 s/);
      }
      expect(timedOut.some((u) => u.received().includes('"Code":"RequestTimeout"'))).toBe(true);
      expect(timedOut.some((u) => u.received().includes('"code":"RequestTimeout"'))).toBe(true);

      // The request taken before is not lost.
      expect(await (await fetch(`${emulator.triggerUrl}/status`)).json()).toEqual({ holding: true });
      expect(await (await fetch(`${emulator.triggerUrl}/release`)).text()).toBe('released');
      await poll(() => accepted.received()).toMatch(/^HTTP\/1\.1 200 [\s\S]*\{"length":33554432\}$/);
    } finally {
      // The next test needs the budget whole, whatever this one found.
      for (const u of [accepted, ...idle]) u.socket.destroy();
    }
  });

  it('answers 408 to a body that stops after `100 Continue`, and to a chunked one that stops', async () => {
    const continued = upload(triggerPort, `${declaring(MiB)}\r\nExpect: 100-continue`, '');
    await poll(() => continued.received()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    continued.socket.write('a');
    const chunked = upload(
      controlPort,
      'POST /2023-03-30/functions/size/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked',
      '4\r\nabcd\r\n',
    );
    await poll(() => continued.received()).toMatch(/\r\n\r\nHTTP\/1\.1 408 [\s\S]*"code":"RequestTimeout"/);
    await poll(() => chunked.received()).toMatch(/^HTTP\/1\.1 408 [\s\S]*"Code":"RequestTimeout"/);
    for (const u of [continued, chunked]) u.socket.destroy();
    expect((await small()).status).toBe(200);
  });
});
