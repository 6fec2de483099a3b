import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../scripts/demo/emulator.js';
import { callTranscode, curlLine } from '../scripts/demo/http.js';
import { fcClient, localAccessKey, stopTask, watchTask } from '../scripts/demo/tasks.js';
import { tempDir } from './helpers.js';

let root: string;

beforeAll(async () => {
  root = await tempDir('demo');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('the demo talks to the FC API through the official SDK', () => {
  it('watches a task until it is final and stops one, on the documented paths', async () => {
    const requests: string[] = [];
    const statuses = ['Enqueued', 'Running', 'Running', 'Succeeded'];
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.method === 'PUT') return res.end('{}');
      res.end(
        JSON.stringify({ taskId: 'demo_1', requestId: '1-r', status: statuses.shift() ?? 'Succeeded', events: [] }),
      );
    });
    const port = await listen(server);
    try {
      const client = fcClient(`127.0.0.1:${port}`);
      const seen: string[] = [];
      const task = await watchTask(client, 'transcode', 'demo_1', {
        onStatus: (t) => seen.push(t.status ?? ''),
        intervalMs: 5,
      });
      expect(task.status).toBe('Succeeded');
      expect(seen).toEqual(['Enqueued', 'Running', 'Succeeded']);
      await stopTask(client, 'transcode', 'demo_1');
      expect(new Set(requests)).toEqual(
        new Set([
          'GET /2023-03-30/functions/transcode/async-tasks/demo_1',
          'PUT /2023-03-30/functions/transcode/async-tasks/demo_1/stop',
        ]),
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('gives up watching after its time limit', async () => {
    const server = createServer((_req, res) => res.end(JSON.stringify({ taskId: 't', status: 'Running' })));
    const port = await listen(server);
    try {
      await expect(
        watchTask(fcClient(`127.0.0.1:${port}`), 'transcode', 't', { timeoutMs: 50, intervalMs: 5 }),
      ).rejects.toThrow('Task t is still Running after 50 ms');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('the demo calls the HTTP trigger as the README curl lines do', () => {
  it('sends the async headers and reads the 202', async () => {
    let headers: Record<string, unknown> = {};
    let body = '';
    const server = createServer((req, res) => {
      headers = req.headers;
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => res.writeHead(202, { 'x-fc-request-id': '1-r', 'x-fc-async-task-id': 'demo_2' }).end());
    });
    const port = await listen(server);
    try {
      const answer = await callTranscode(`http://127.0.0.1:${port}/`, { a: 1 }, { taskId: 'demo_2' });
      expect(answer).toEqual({ status: 202, requestId: '1-r', taskId: 'demo_2', body: '' });
      expect(headers).toMatchObject({
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': 'demo_2',
        'content-type': 'application/json',
      });
      expect(JSON.parse(body)).toEqual({ a: 1 });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('prints a curl line that says Async only for async calls', () => {
    expect(curlLine('http://127.0.0.1:9000/', { x: 1 }, true)).toBe(
      `curl -i -H 'X-Fc-Invocation-Type: Async' -H 'Content-Type: application/json' -d '{"x":1}' http://127.0.0.1:9000/`,
    );
    expect(curlLine('http://127.0.0.1:9000/', { x: 1 }, false)).not.toContain('Async');
  });
});

describe('startEmulator', () => {
  /** A stand-in CLI: records its argv and key, then prints what `fc-async dev --log-format json` prints. */
  async function fakeCli(name: string, ready: unknown): Promise<string> {
    const cli = join(root, name);
    await writeFile(
      cli,
      `import { writeFileSync } from 'node:fs';
       writeFileSync(${JSON.stringify(join(root, `${name}.json`))}, JSON.stringify({
         argv: process.argv.slice(2),
         key: [process.env.FC_ASYNC_ACCESS_KEY_ID, process.env.FC_ASYNC_ACCESS_KEY_SECRET],
       }));
       console.log(JSON.stringify({ level: 'info', message: 'dest-succ is an event function' }));
       setTimeout(() => console.log(${JSON.stringify(JSON.stringify(ready))}), 200);
       setInterval(() => {}, 1000);`,
    );
    return cli;
  }

  it('runs `<cli> dev --config s.yaml` on free ports with the key, takes the URLs of its ready line, and stops it', async () => {
    const cli = await fakeCli('ready-cli.mjs', {
      kind: 'ready',
      trigger: 'http://127.0.0.1:40001',
      control: 'http://127.0.0.1:40002/',
      functions: [
        { name: 'dest-succ', kind: 'fc-handler', handler: 'index.handler' },
        { name: 'transcode', url: 'http://127.0.0.1:40001/', kind: 'fc-async-handler', handler: 'index.handler' },
      ],
    });
    const emulator = await startEmulator({
      cwd: root,
      cli,
      accessKey: { accessKeyId: 'ak', accessKeySecret: 'sk' },
      env: { PATH: process.env.PATH },
    });
    try {
      expect(emulator.triggerUrl).toBe('http://127.0.0.1:40001/');
      expect(emulator.controlEndpoint).toBe('127.0.0.1:40002');
      expect(JSON.parse(await readFile(join(root, 'ready-cli.mjs.json'), 'utf8'))).toEqual({
        argv: ['dev', '--config', 's.yaml', '--port', '0', '--control-port', '0', '--log-format', 'json'],
        key: ['ak', 'sk'],
      });
      expect(emulator.output[0]).toContain('dest-succ is an event function');
    } finally {
      await emulator.stop();
    }
    expect(emulator.child.exitCode !== null || emulator.child.signalCode !== null).toBe(true);
  });

  it('fails when the function has no HTTP trigger URL in the ready line', async () => {
    const cli = await fakeCli('no-http-cli.mjs', {
      kind: 'ready',
      trigger: 'http://127.0.0.1:40001',
      control: 'http://127.0.0.1:40002/',
      functions: [{ name: 'dest-fail', kind: 'fc-handler', handler: 'index.handler' }],
    });
    await expect(startEmulator({ cwd: root, cli, env: { PATH: process.env.PATH } })).rejects.toThrow(
      'fc-async dev serves no HTTP function transcode',
    );
  });

  it('fails with what the CLI said when it exits before it is ready', async () => {
    const cli = join(root, 'broken-cli.mjs');
    await writeFile(cli, `console.error('fc-async: s.yaml: function transcode has no code'); process.exit(1);`);
    await expect(startEmulator({ cwd: root, cli, env: { PATH: process.env.PATH } })).rejects.toThrow(
      /fc-async dev exited \(1\):\nfc-async: s\.yaml: function transcode has no code/,
    );
  });
});

describe('localAccessKey', () => {
  it('is FC_ASYNC_ACCESS_KEY_ID/SECRET, else a key made up for the emulator', () => {
    expect(localAccessKey({})).toEqual({ accessKeyId: 'fc-async-local', accessKeySecret: 'fc-async-local' });
    expect(localAccessKey({ FC_ASYNC_ACCESS_KEY_ID: 'id', FC_ASYNC_ACCESS_KEY_SECRET: 'secret' })).toEqual({
      accessKeyId: 'id',
      accessKeySecret: 'secret',
    });
  });
});
