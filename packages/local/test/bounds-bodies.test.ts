import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyBudget, readBody } from '../src/body.js';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture } from './helpers.js';

// The emulator's budget of request body bytes, shared by the HTTP trigger and the control plane:
// bodies that would take it past its limit get a 503 with Retry-After, and every byte is given
// back when its request ends, however it ends.

const MiB = 1024 * 1024;
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 20 });

/** A raw connection that sent `head` and the start of a body, and collects what comes back. */
function upload(port: number, head: string, start: Buffer | string) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  socket.write(`${head}\r\n\r\n`);
  socket.write(start);
  return { socket, received: () => received, closed: () => closed };
}

describe('readBody with a budget', () => {
  const budget = new BodyBudget(100_000);
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((req, res) => {
      readBody(req, 200_000, undefined, budget).then(
        (body) => {
          budget.release(body);
          res.end(String(body.length));
        },
        (error: { statusCode: number; code: string }) => {
          res.writeHead(error.statusCode, { connection: 'close' });
          res.end(error.code);
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('gives back the bytes of uploads dropped mid-body, declared or chunked, and is whole again', async () => {
    for (let round = 0; round < 5; round++) {
      const uploads = [
        ...Array.from({ length: 10 }, () =>
          upload(port, 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4000', 'x'.repeat(100)),
        ),
        ...Array.from({ length: 10 }, () =>
          upload(port, 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked', `64\r\n${'x'.repeat(100)}\r\n`),
        ),
      ];
      // Declared bodies count whole from the start, chunked ones as their bytes arrive.
      await poll(() => budget.held).toBe(10 * 4000 + 10 * 100);
      for (const u of uploads) u.socket.destroy();
      await poll(() => budget.held).toBe(0);
    }
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x'.repeat(100_000) });
    expect(await res.text()).toBe('100000');
    expect(budget.held).toBe(0);
  });

  it('refuses a chunked body when it grows past the budget, and gives its bytes back', async () => {
    const big = upload(port, 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 60000', 'x');
    await poll(() => budget.held).toBe(60_000);
    const chunk = (n: number) => `${n.toString(16)}\r\n${'y'.repeat(n)}\r\n`;
    const chunked = upload(port, 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked', chunk(30_000));
    await poll(() => budget.held).toBe(90_000);
    chunked.socket.write(chunk(20_000));
    await poll(() => chunked.received()).toMatch(/^HTTP\/1\.1 503 [\s\S]*BodyBudgetExceeded/);
    expect(budget.held).toBe(60_000);
    big.socket.destroy();
    chunked.socket.destroy();
    await poll(() => budget.held).toBe(0);
  });
});

describe('the emulator with a body budget', () => {
  let emulator: Emulator;
  let triggerPort: number;
  let controlPort: number;
  beforeAll(async () => {
    emulator = await startEmulator({
      entry: fixture('bounds-size-handler.mjs'),
      name: 'size',
      port: 0,
      controlPort: 0,
      output: () => {},
      maxBufferedBodyBytes: 32 * MiB,
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

  it('answers the trigger and the API 503 with Retry-After while the budget is held, then takes them again', async () => {
    const held = upload(triggerPort, declaring(32 * MiB), 'a'.repeat(64 * 1024));
    await poll(async () => (await small()).status).toBe(503);
    const refused = await small();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('connection')).toBe('close');
    const body = (await refused.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['code', 'message']);
    expect(body.code).toBe('BodyBudgetExceeded');
    expect(body.message).toMatch(/budget of 33554432 bytes/);

    const api = await invoke();
    expect(api.status).toBe(503);
    expect(api.headers.get('retry-after')).toBe('1');
    const apiBody = (await api.json()) as Record<string, unknown>;
    expect(Object.keys(apiBody).sort()).toEqual(['Code', 'Message', 'RequestId']);
    expect(apiBody.Code).toBe('BodyBudgetExceeded');
    expect(apiBody.RequestId).toBe(api.headers.get('x-fc-request-id'));

    // A request without a body needs none of the budget.
    expect((await fetch(`${emulator.triggerUrl}/status`)).status).toBe(200);
    expect((await fetch(`${emulator.controlUrl}/api/functions`)).status).toBe(200);

    held.socket.destroy();
    await poll(async () => (await small()).status).toBe(200);
    expect((await invoke()).status).toBe(200);
  });

  it('closes the connection of a refused request', async () => {
    const held = upload(triggerPort, declaring(32 * MiB), 'a');
    await poll(async () => (await small()).status).toBe(503);
    for (const port of [triggerPort, controlPort]) {
      const path = port === triggerPort ? '/' : '/2023-03-30/functions/size/invocations';
      const refused = upload(port, declaring(10, path), '0123456789');
      await poll(() => refused.closed()).toBe(true);
      expect(refused.received()).toMatch(/^HTTP\/1\.1 503 [\s\S]*\r\nretry-after: 1\r\n[\s\S]*BodyBudgetExceeded/i);
    }
    held.socket.destroy();
    await poll(async () => (await small()).status).toBe(200);
  });

  it('refuses a body past the budget before `100 Continue`, on both ports, so it is never sent', async () => {
    const held = upload(triggerPort, declaring(32 * MiB), 'a');
    try {
      await poll(async () => (await small()).status).toBe(503);
      for (const port of [triggerPort, controlPort]) {
        const path = port === triggerPort ? '/' : '/2023-03-30/functions/size/invocations';
        const refused = upload(port, `${declaring(10, path)}\r\nExpect: 100-continue`, '');
        await poll(() => refused.closed()).toBe(true);
        expect(refused.received()).not.toContain('100 Continue');
        expect(refused.received()).toMatch(/^HTTP\/1\.1 503 [\s\S]*BodyBudgetExceeded/);
      }
    } finally {
      // The next tests need the budget whole, whatever this one found.
      held.socket.destroy();
    }
    await poll(async () => (await small()).status).toBe(200);
  });

  it('is whole again after many uploads dropped mid-body on both ports', async () => {
    for (let round = 0; round < 12; round++) {
      const port = round % 2 === 0 ? triggerPort : controlPort;
      const path = port === triggerPort ? '/' : '/2023-03-30/functions/size/invocations';
      const dropped = upload(port, declaring(32 * MiB, path), 'a'.repeat(256 * 1024));
      // The whole budget is this upload's until it is dropped.
      await poll(async () => (await small()).status).toBe(503);
      dropped.socket.destroy();
      await poll(async () => (await small()).status).toBe(200);
    }
  });

  it('keeps taking a request it accepted, and counts its body until its invocation returns', async () => {
    const chunk = 'a'.repeat(MiB);
    const accepted = upload(triggerPort, declaring(32 * MiB, '/hold'), chunk);
    await poll(async () => (await small()).status).toBe(503);
    for (let i = 1; i < 32; i++) accepted.socket.write(chunk);
    await poll(async () => await (await fetch(`${emulator.triggerUrl}/status`)).json()).toEqual({ holding: true });
    // The body is whole and in the function's hands: still counted.
    expect((await small()).status).toBe(503);
    expect((await invoke()).status).toBe(503);
    expect(await (await fetch(`${emulator.triggerUrl}/release`)).text()).toBe('released');
    await poll(() => accepted.received()).toMatch(/^HTTP\/1\.1 200 [\s\S]*\{"length":33554432\}$/);
    accepted.socket.destroy();
    expect((await small()).status).toBe(200);
    expect(await (await invoke()).json()).toEqual({ length: 10 });
  });
});
