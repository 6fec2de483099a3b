import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../scripts/demo/emulator.js';
import { callTranscode, curlLine } from '../scripts/demo/http.js';
import { fcClient, stopTask, watchTask } from '../scripts/demo/tasks.js';
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

async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
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
  it('runs `<cli> dev --config s.yaml`, waits for both ports, takes the trigger URL it prints, and stops it', async () => {
    const [trigger, control] = [await freePort(), await freePort()];
    const cli = join(root, 'fake-cli.mjs');
    await writeFile(
      cli,
      `import { createServer } from 'node:http';
       import { writeFileSync } from 'node:fs';
       writeFileSync(${JSON.stringify(join(root, 'argv.json'))}, JSON.stringify(process.argv.slice(2)));
       setTimeout(() => {
         createServer((q, s) => s.end('ok')).listen(${trigger}, '127.0.0.1');
         createServer((q, s) => s.end('{}')).listen(${control}, '127.0.0.1');
         console.log('transcode  http://127.0.0.1:${trigger}/2023-03-30/functions/transcode/invocations');
       }, 300);`,
    );
    const emulator = await startEmulator({
      cwd: root,
      cli,
      controlEndpoint: `127.0.0.1:${control}`,
      env: { PATH: process.env.PATH },
    });
    try {
      expect(emulator.triggerUrl).toBe(`http://127.0.0.1:${trigger}/2023-03-30/functions/transcode/invocations`);
      expect(JSON.parse(await readFile(join(root, 'argv.json'), 'utf8'))).toEqual(['dev', '--config', 's.yaml']);
    } finally {
      await emulator.stop();
    }
    expect(emulator.child.exitCode !== null || emulator.child.signalCode !== null).toBe(true);
  });

  it('fails with what the CLI said when it exits before it is ready', async () => {
    const cli = join(root, 'broken-cli.mjs');
    await writeFile(cli, `console.error('s.yaml: function transcode has no code'); process.exit(2);`);
    await expect(
      startEmulator({
        cwd: root,
        cli,
        triggerUrl: `http://127.0.0.1:${await freePort()}/`,
        env: { PATH: process.env.PATH },
      }),
    ).rejects.toThrow(/fc-async dev exited \(2\):\ns\.yaml: function transcode has no code/);
  });
});
