import http from 'node:http';
import net from 'node:net';
import { silentLogger } from '@fc-async/core';
import Fastify from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fcAsync, listen } from '../src/index.js';

// listen(app) serves the app from a server of its own: what plugins listen to on `app.server`
// besides requests (@fastify/websocket's 'upgrade', Fastify's clientErrorHandler) is passed on.

/** A raw upgrade request: `upgraded 101` when a listener took it, `plain <status>` when the router answered. */
function upgrade(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = { connection: 'Upgrade', upgrade: 'websocket' };
    const req = http.request({ port, host: '127.0.0.1', path: '/ws', headers });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(`upgraded ${res.statusCode}`);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(`plain ${res.statusCode}`);
    });
    req.on('error', reject);
    req.end();
  });
}

/** What the app's server's upgrade listener answers, as @fastify/websocket's does. */
function switchProtocols(_req: http.IncomingMessage, socket: { end(text: string): void }): void {
  socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
}

async function served(withUpgrade: boolean) {
  const app = Fastify();
  await app.register(fcAsync, { logger: silentLogger, env: {} });
  if (withUpgrade) app.server.on('upgrade', switchProtocols);
  app.get('/ws', async () => 'plain http');
  const fc = await listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: silentLogger, env: {} });
  onTestFinished(() => fc.close());
  return { app, fc };
}

describe('listen(app) and the events of app.server', () => {
  it('passes an upgrade to the listener on app.server (101), as app.listen() does', async () => {
    const { fc } = await served(true);
    expect(await upgrade(fc.port)).toBe('upgraded 101');
  });

  it('leaves an upgrade to the router while nothing listens on app.server, and follows listeners added later or removed', async () => {
    const { app, fc } = await served(false);
    expect(await upgrade(fc.port)).toBe('plain 200');
    app.server.on('upgrade', switchProtocols);
    expect(await upgrade(fc.port)).toBe('upgraded 101');
    app.server.off('upgrade', switchProtocols);
    expect(await upgrade(fc.port)).toBe('plain 200');
  });

  it("answers a malformed request with Fastify's clientErrorHandler", async () => {
    const { fc } = await served(false);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(fc.port, '127.0.0.1', () => socket.write('NOT HTTP\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk;
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    // Fastify's answer has a JSON body; Node's own has none.
    expect(answer).toContain('"message":"Client Error"');
  });
});
