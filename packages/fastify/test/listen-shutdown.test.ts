import net from 'node:net';
import { silentLogger } from '@fc-async/core';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { fcAsync, listen } from '../src/index.js';

const ORDER = 'POST /orders HTTP/1.1\r\nHost: shop\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}';

/** What the server sent on `socket` until it closed it, and whether it closed it with a reset. */
function untilClosed(socket: net.Socket): Promise<{ text: string; reset: boolean }> {
  let text = '';
  let reset = false;
  socket.on('data', (chunk) => {
    text += chunk;
  });
  socket.on('error', () => {
    reset = true;
  });
  return new Promise((resolve) => socket.once('close', () => resolve({ text, reset })));
}

describe('listen(app) shutting down with keep-alive connections open', () => {
  it('answers a request its client sent on an idle connection before the shutdown, not yet read, instead of cutting it', async () => {
    const app = Fastify();
    await app.register(fcAsync, { logger: silentLogger, env: {} });
    let orders = 0;
    app.post('/orders', async () => ({ order: ++orders }));
    const fc = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: silentLogger, env: {} });

    // A load balancer's connection: one order answered, the connection kept alive.
    const socket = net.connect(fc.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const answers = untilClosed(socket);
    socket.write(ORDER);
    await expect.poll(() => orders).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 50));

    // The next order is on the wire when the shutdown starts (a SIGTERM handled in the same turn).
    socket.write(ORDER);
    const closing = fc.close();
    const { text, reset } = await answers;
    await closing;

    expect(reset).toBe(false);
    expect(text.match(/HTTP\/1\.1 \d{3}[^\r]*/g)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    const second = text.slice(text.lastIndexOf('HTTP/1.1'));
    expect(second).toContain('{"order":2}');
    // The answer tells the client not to use the connection again.
    expect(second.toLowerCase()).toContain('connection: close');
  });

  it('answers a request sent on an idle connection while another is still under way, then closes', async () => {
    const app = Fastify();
    await app.register(fcAsync, { logger: silentLogger, env: {} });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let orders = 0;
    app.post('/orders', async () => ({ order: ++orders }));
    app.post('/report', async () => {
      await gate;
      return { report: true };
    });
    const fc = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: silentLogger, env: {} });
    const open = async () => {
      const socket = net.connect(fc.port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      return { socket, answers: untilClosed(socket) };
    };
    const idle = await open();
    const busy = await open();
    idle.socket.write(ORDER);
    await expect.poll(() => orders).toBe(1);
    busy.socket.write(ORDER.replace('/orders', '/report'));
    await new Promise((resolve) => setTimeout(resolve, 50));

    const closing = fc.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The load balancer had not heard of the shutdown: its next order goes on the idle connection.
    idle.socket.write(ORDER);
    await expect.poll(() => orders).toBe(2);
    release();
    const [first, second] = await Promise.all([idle.answers, busy.answers]);
    await closing;

    expect(first.reset).toBe(false);
    expect(first.text.match(/HTTP\/1\.1 \d{3}[^\r]*/g)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(first.text.slice(first.text.lastIndexOf('HTTP/1.1')).toLowerCase()).toContain('connection: close');
    expect(second.text).toContain('{"report":true}');
  });

  it('still closes an idle connection that sends nothing, so the shutdown ends', async () => {
    const app = Fastify();
    await app.register(fcAsync, { logger: silentLogger, env: {} });
    app.post('/orders', async () => ({ ok: true }));
    const fc = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: silentLogger, env: {} });
    const socket = net.connect(fc.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const answers = untilClosed(socket);
    socket.write(ORDER);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await fc.close();
    const { text } = await answers;
    expect(text).toContain('HTTP/1.1 200 OK');
    // New connections are refused once it closed.
    const refused = await new Promise<string>((resolve) => {
      const late = net.connect(fc.port, '127.0.0.1');
      late.once('connect', () => resolve('connected'));
      late.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
