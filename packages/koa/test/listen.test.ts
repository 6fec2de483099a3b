import { spawn } from 'node:child_process';
import { Agent, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { type FcServer, fcAsync, listen } from '../src/index.js';
import { logger } from './event.js';

const open: FcServer[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
const quiet = { logger: logger(), signals: [] as NodeJS.Signals[] };

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

describe('koa listen()', () => {
  it('listens on 0.0.0.0 and FC_CUSTOM_LISTEN_PORT before FC_SERVER_PORT, keep-alive working', async () => {
    const app = new Koa();
    const sockets = new Set<unknown>();
    app.use((ctx) => {
      sockets.add(ctx.req.socket);
      ctx.body = 'ok';
    });
    const port = await freePort();
    const fc = await listen(app, { ...quiet, env: { FC_CUSTOM_LISTEN_PORT: String(port), FC_SERVER_PORT: '1' } });
    open.push(fc);
    expect([fc.port, fc.host, (fc.server.address() as AddressInfo).address]).toEqual([port, '0.0.0.0', '0.0.0.0']);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = () =>
      new Promise<number>((resolve, reject) =>
        get(`http://127.0.0.1:${port}/`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject),
      );
    expect([await once(), await once()]).toEqual([200, 200]);
    expect(sockets.size).toBe(1);
    agent.destroy();
  });

  it('answers POST /initialize, and GET /pre-stop once the async tasks of its fcAsync() finished', async () => {
    const app = new Koa();
    const middleware = fcAsync({ logger: logger(), env: {} });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    app.use(middleware);
    app.use(async (ctx) => {
      await gate;
      ctx.body = 'done';
    });
    const fc = await listen(app, { ...quiet, host: '127.0.0.1', port: 0 });
    open.push(fc);
    const url = `http://127.0.0.1:${fc.port}`;
    expect((await fetch(`${url}/initialize`, { method: 'POST' })).status).toBe(200);
    const accepted = await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-async-task-id': 'slow' } });
    expect(accepted.status).toBe(202);
    const preStop = fetch(`${url}/pre-stop`);
    setTimeout(release, 50);
    expect((await preStop).status).toBe(200);
    expect((await middleware.tasks.get('slow'))?.status).toBe('Succeeded');
  });

  it('on SIGTERM finishes the in-flight request and exits 0', async () => {
    const entry = new URL('../src/index.ts', import.meta.url).href;
    const script = `
      import Koa from 'koa';
      import { listen } from ${JSON.stringify(entry)};
      const app = new Koa();
      app.use(async (ctx) => {
        console.log('started');
        await new Promise((r) => setTimeout(r, 200));
        ctx.body = 'finished';
      });
      const fc = await listen(app, { port: 0, host: '127.0.0.1', logger: { debug() {}, info() {}, warn() {}, error() {} } });
      console.log('port ' + fc.port);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('.', import.meta.url),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let out = '';
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpMatchArray>((resolve) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) resolve(m);
        };
        child.stdout.on('data', (d) => {
          out += d;
          check();
        });
        check();
      });
    const port = (await waitFor(/port (\d+)/))[1];
    const response = fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    await waitFor(/started/);
    child.kill('SIGTERM');
    expect(await response).toBe('finished');
    expect(await exited).toBe(0);
  }, 15_000);
});
