import { Agent, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FcServer } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type Child, middlewareTargets, recordingLogger, spawnTsx } from '../src/index.js';
import { freePort } from '../src/net.js';

const open: FcServer[] = [];
const children: Child[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
const quiet = () => ({ logger: recordingLogger(), signals: [] as NodeJS.Signals[] });

/** GET `url` on `agent`: the status and the `connection` header. */
const getOn = (url: string, agent?: Agent) =>
  new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) =>
    get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    }).on('error', reject),
  );

describe.each(middlewareTargets)('$name listen()', (target) => {
  it('listens on 0.0.0.0 and FC_CUSTOM_LISTEN_PORT before FC_SERVER_PORT, keep-alive working', async () => {
    const sockets = new Set<unknown>();
    const built = await target.build({
      routes: [
        {
          method: 'GET',
          path: '/',
          handle: (req) => {
            sockets.add(req.socket);
            return { body: 'ok' };
          },
        },
      ],
    });
    const port = await freePort();
    const fc = await built.listen({
      ...quiet(),
      env: { FC_CUSTOM_LISTEN_PORT: String(port), FC_SERVER_PORT: '1' },
    });
    open.push(fc);
    expect([fc.port, fc.host, (fc.server.address() as AddressInfo).address]).toEqual([port, '0.0.0.0', '0.0.0.0']);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = async () => (await getOn(`http://127.0.0.1:${port}/`, agent)).status;
    expect([await once(), await once()]).toEqual([200, 200]);
    expect(sockets.size).toBe(1);
    agent.destroy();
  });

  it('takes a port given as digits in a string (process.env.PORT), and refuses any other string before listening', async () => {
    const built = await target.build({ routes: [{ method: 'GET', path: '/', handle: () => ({ body: 'ok' }) }] });
    await expect(built.listen({ ...quiet(), port: 'http' as never })).rejects.toThrow(
      new TypeError('Expected `port` to be a port number from 0 to 65535, got the string "http"'),
    );
    const port = await freePort();
    const fc = await built.listen({ ...quiet(), port: String(port) as never });
    open.push(fc);
    expect(fc.port).toBe(port);
    expect((await getOn(`http://127.0.0.1:${port}/`)).status).toBe(200);
  });

  it('answers POST /initialize, and GET /pre-stop once the async tasks of its fcAsync() finished', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const built = await target.build({
      fcAsync: { logger: recordingLogger(), env: {} },
      routes: [
        {
          method: 'POST',
          path: '/job',
          handle: async () => {
            await gate;
            return { body: 'done' };
          },
        },
      ],
    });
    const fc = await built.listen({ ...quiet(), host: '127.0.0.1', port: 0 });
    open.push(fc);
    const url = `http://127.0.0.1:${fc.port}`;
    expect((await fetch(`${url}/initialize`, { method: 'POST' })).status).toBe(200);
    const accepted = await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-async-task-id': 'slow' } });
    expect(accepted.status).toBe(202);
    const preStop = fetch(`${url}/pre-stop`);
    setTimeout(release, 50);
    expect((await preStop).status).toBe(200);
    expect((await built.controls?.tasks.get('slow'))?.status).toBe('Succeeded');
  });

  it(`on SIGTERM finishes the in-flight request${target.closesApp ? ', closes the app' : ''} and exits 0`, async () => {
    const script = fileURLToPath(new URL('./fixtures/sigterm-app.ts', import.meta.url));
    const child = spawnTsx(script, [target.name], fileURLToPath(new URL('.', import.meta.url)));
    children.push(child);
    const port = (await child.line(/port (\d+)/))[1];
    const response = getOn(`http://127.0.0.1:${port}/`);
    await child.line(/started/);
    child.kill('SIGTERM');
    // The route answers only after SIGTERM: the shutdown had begun, so it asks the client to close.
    expect(await response).toEqual({ status: 200, connection: 'close', body: 'finished' });
    expect(await child.exited).toBe(0);
    if (target.closesApp) expect(child.stdout()).toContain('app closed');
  }, 60_000);
});
