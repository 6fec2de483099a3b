import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, loadServerlessConfig, startEmulator } from '../src/index.js';
import { alive, fixture, runCli, waitFor } from './helpers.js';

// A custom runtime (custom.debian10, `node ./server.js`) served as FC serves it: a child process
// behind the trigger, FC's environment and headers, x-fc-status for failures, lifecycle hooks.
const config = fixture('custom-runtime/s.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'fc-async-custom-runtime-'));

type Task = { status: string; returnPayload?: string; alreadyRetriedTimes?: number; taskErrorMessage?: string };
type Seen = {
  headers: Record<string, string>;
  env: Record<string, string>;
  port: number;
  pid: number;
  initialized: number;
  initializeHeaders: Record<string, string>;
};

/** One emulator serving the fixture, with its JSON log lines. */
async function serve(outDir = tmp) {
  const lines: Record<string, unknown>[] = [];
  const output = (text: string) => {
    for (const line of text.trim().split('\n')) lines.push(JSON.parse(line) as Record<string, unknown>);
  };
  const emulator = await startEmulator({
    config,
    port: 0,
    controlPort: 0,
    retryBaseMs: 10,
    outDir,
    logFormat: 'json',
    output,
  });
  return { emulator, lines };
}

async function finished(emulator: Emulator, taskId: string): Promise<Task> {
  return waitFor(async () => {
    const r = await fetch(`${emulator.controlUrl}/2023-03-30/functions/web/async-tasks/${taskId}`);
    const task = (await r.json()) as Task;
    return task.status === 'Succeeded' || task.status === 'Failed' ? task : undefined;
  });
}

const post = (emulator: Emulator, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${emulator.triggerUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('reading a custom runtime from an s.yaml', () => {
  it('gives its command and args, port and lifecycle hooks, with the code folder to run in', async () => {
    const { functions, warnings } = await loadServerlessConfig(config);
    expect(functions[0]).toMatchObject({
      name: 'web',
      runtime: 'custom.debian10',
      file: fixture('custom-runtime/code'),
      customRuntime: {
        command: ['node', './server.js'],
        port: 9000,
        initializer: { timeout: 5 },
        preStop: { timeout: 5 },
      },
    });
    expect(warnings).toEqual([]);
  });
});

describe('serving a custom runtime', () => {
  let emulator: Emulator;
  let lines: Record<string, unknown>[];
  const secret = process.env.FC_ASYNC_ACCESS_KEY_SECRET;
  beforeAll(async () => {
    process.env.FC_ASYNC_ACCESS_KEY_SECRET = 'the-emulators-own-secret';
    ({ emulator, lines } = await serve());
  });
  afterAll(async () => {
    await emulator.close({ timeoutMs: 2000 });
    if (secret === undefined) delete process.env.FC_ASYNC_ACCESS_KEY_SECRET;
    else process.env.FC_ASYNC_ACCESS_KEY_SECRET = secret;
  });

  it('answers a sync call with the child answer whole: status, headers, both cookies, body', async () => {
    const res = await fetch(`${emulator.triggerUrl}/hello?q=x`);
    expect(res.status).toBe(201);
    expect(res.headers.get('x-answer')).toBe('yes');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
    expect(res.headers.get('x-fc-request-id')).toMatch(/^1-/);
    expect(await res.json()).toEqual({ greeting: 'hello from the child', q: 'x' });
  });

  it("the child sees FC's headers and environment, was initialized once, and gets no emulator secret", async () => {
    const res = await fetch(`${emulator.triggerUrl}/seen`, { headers: { 'x-fc-retry-count': '5' } });
    const seen = (await res.json()) as Seen;
    expect(seen.headers).toMatchObject({
      'x-fc-request-id': res.headers.get('x-fc-request-id'),
      'x-fc-function-name': 'web',
      'x-fc-region': 'cn-shanghai',
      'x-fc-function-memory': '256',
      'x-fc-control-path': '/http-invoke',
      'x-fc-service-logproject': 'web-logs',
      'x-fc-service-logstore': 'web-requests',
    });
    // The lifecycle hook gets FC's common headers too, the log's included.
    expect(seen.initializeHeaders).toMatchObject({
      'x-fc-function-name': 'web',
      'x-fc-control-path': '/initialize',
      'x-fc-service-logproject': 'web-logs',
      'x-fc-service-logstore': 'web-requests',
    });
    expect(seen.headers['x-fc-retry-count']).toBe('0');
    expect(seen.headers['x-fc-async-task-id']).toBeUndefined();
    expect(seen.env).toMatchObject({
      FC_FUNCTION_NAME: 'web',
      FC_REGION: 'cn-shanghai',
      FC_FUNCTION_MEMORY_SIZE: '256',
      FC_SERVER_PORT: String(seen.port),
      FC_CUSTOM_LISTEN_PORT: String(seen.port),
    });
    expect(seen.env.FC_INSTANCE_ID).toMatch(/^c-/);
    expect(seen.env.FC_ASYNC_ACCESS_KEY_SECRET).toBeUndefined();
    expect(seen.env.NODE_ENV).toBeUndefined();
    expect(seen.initialized).toBe(1);
    expect(lines.some((l) => l.message === 'web: initialized' && l.stream === 'stdout')).toBe(true);
  });

  it("an async call answers 202 and its task succeeds with the child's answer, the task id in its headers", async () => {
    const res = await post(
      emulator,
      '/job',
      { n: 1 },
      { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'job_1' },
    );
    expect(res.status).toBe(202);
    const task = await finished(emulator, 'job_1');
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload as string)).toEqual({ done: { n: 1 }, taskId: 'job_1' });
  });

  it('an answer with x-fc-status: 404 fails the attempt: retried maxAsyncRetryAttempts times, then onFailure', async () => {
    const res = await post(emulator, '/fail', {}, { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'fail_1' });
    expect(res.status).toBe(202);
    const task = await finished(emulator, 'fail_1');
    expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 2 });
    const attempts = (await (await fetch(`${emulator.triggerUrl}/attempts`)).json()) as Record<string, number>;
    expect(attempts.fail_1).toBe(3);
    const jsonl = join(tmp, 'web.onFailure.jsonl');
    const text = await waitFor(() => (existsSync(jsonl) ? readFileSync(jsonl, 'utf8').trim() || undefined : undefined));
    const record = JSON.parse(text.split('\n')[0] as string);
    expect(record.requestContext).toMatchObject({ condition: 'UnhandledInvocationError', approximateInvokeCount: 3 });
    expect(record.requestContext.functionArn).toMatch(/functions\/web$/);
  });

  it('a plain 500 without x-fc-status is a success, as on FC: not retried', async () => {
    const res = await post(
      emulator,
      '/plain-500',
      {},
      { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'oops_1' },
    );
    expect(res.status).toBe(202);
    const task = await finished(emulator, 'oops_1');
    expect(task).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
    expect(JSON.parse(task.returnPayload as string)).toEqual({ oops: true });
  });

  it('an event function (no HTTP trigger) gets its event as POST /invoke, as FC sends it', async () => {
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/worker/invocations`, {
      method: 'POST',
      body: '{"hi":1}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invoked: { hi: 1 }, controlPath: '/invoke' });
  });

  it('an answer the child cuts mid-body is a 502 that says so, not that the child could not be reached', async () => {
    const res = await fetch(`${emulator.triggerUrl}/cut`);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      code: 'CAConnectionFailed',
      message:
        'The custom runtime of web closed the connection before its answer ended (HTTP 200, 1000 bytes of its body)',
    });
  });

  it('a sync call gets the child answer as it is, x-fc-status included', async () => {
    const res = await post(emulator, '/fail', {});
    expect(res.status).toBe(500);
    expect(res.headers.get('x-fc-status')).toBe('404');
  });
});

describe('the child process', () => {
  it('close() sends GET /pre-stop, then stops the child: its pid is gone', async () => {
    const { emulator, lines } = await serve(mkdtempSync(join(tmp, 'stop-')));
    const { pid } = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as Seen;
    expect(alive(pid)).toBe(true);
    await emulator.close({ timeoutMs: 2000 });
    expect(lines.some((l) => l.message === `web: pre-stop ${pid}`)).toBe(true);
    expect(alive(pid)).toBe(false);
  });

  it('a child that exited: as on FC, the next call starts a new instance (hooks, a new FC_INSTANCE_ID)', async () => {
    const { emulator, lines } = await serve(mkdtempSync(join(tmp, 'crash-')));
    try {
      const before = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as Seen;
      expect(await (await post(emulator, '/crash', {})).text()).toBe('bye');
      await waitFor(() => lines.find((l) => l.message === 'web: the custom runtime exited'));
      const after = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as Seen;
      expect(after.pid).not.toBe(before.pid);
      expect(alive(after.pid)).toBe(true);
      expect(after.initialized).toBe(1); // POST /initialize again, on the new instance
      expect(after.env.FC_INSTANCE_ID).toMatch(/^c-[0-9a-f]{8}-local-[0-9a-f]{16}$/);
      expect(after.env.FC_INSTANCE_ID).not.toBe(before.env.FC_INSTANCE_ID);
      expect(lines.filter((l) => String(l.message).includes('new instance'))).toEqual([
        expect.objectContaining({
          message: 'web: starting a new instance of the custom runtime (the last one exited)',
        }),
      ]);
      await post(emulator, '/job', { n: 1 }, { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'after_1' });
      expect(await finished(emulator, 'after_1')).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
      await emulator.close({ timeoutMs: 2000 });
      expect(alive(after.pid)).toBe(false);
    } finally {
      await emulator.close({ timeoutMs: 2000 });
    }
  });

  it('a child that exits at start: fc-async dev says which function, command and stderr, and exits 1', async () => {
    const { code, stderr } = await runCli([
      'dev',
      '--config',
      fixture('custom-runtime/s-exits.yaml'),
      '--port',
      '0',
      '--control-port',
      '0',
    ]);
    expect(code).toBe(1);
    const last = stderr.trimEnd().split('\n').at(-1);
    expect(last).toMatch(/^fc-async: broken: the custom runtime `node \.\/exits\.js` \(in .*code\) exited with code 3/);
    expect(last).toContain('its last stderr lines: boom: DATABASE_URL is not set');
  });
});

describe("a command naming FC's own programs (`/var/fc/lang/nodejs20/bin/node`, a layer's `/opt/nodejs20/bin/node`)", () => {
  it('runs the program of that name found in PATH, with a notice per function, and serves as FC does', async () => {
    const lines: Record<string, unknown>[] = [];
    const emulator = await startEmulator({
      config: fixture('custom-runtime/s-fc-node.yaml'),
      port: 0,
      controlPort: 0,
      retryBaseMs: 10,
      outDir: mkdtempSync(join(tmp, 'fc-node-')),
      logFormat: 'json',
      output: (text) => {
        for (const line of text.trim().split('\n')) lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
    try {
      for (const name of ['web', 'layered']) {
        const seen = (await (await fetch(`${emulator.triggerUrl}/${name}/seen`)).json()) as Seen;
        expect(seen.env.FC_FUNCTION_NAME).toBe(name);
        expect(alive(seen.pid)).toBe(true);
      }
      const notices = lines.filter((l) => String(l.message).includes('is where FC keeps that program'));
      expect(notices.map((l) => l.message)).toEqual([
        expect.stringMatching(
          /^web: \/var\/fc\/lang\/nodejs20\/bin\/node is where FC keeps that program; this machine has none there, so \/\S+\/node runs$/,
        ),
        expect.stringMatching(
          /^layered: \/opt\/nodejs20\/bin\/node is where FC keeps that program; .* so \/\S+\/node runs$/,
        ),
      ]);
      const accepted = await fetch(`${emulator.triggerUrl}/web/job`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'fc_node_1' },
        body: '{"n":1}',
      });
      expect(accepted.status).toBe(202);
      expect(await finished(emulator, 'fc_node_1')).toMatchObject({ status: 'Succeeded' });
    } finally {
      await emulator.close({ timeoutMs: 2000 });
    }
  });

  it('one of those paths whose program is nowhere here fails the start naming the path and the name looked for, exit 1', async () => {
    const dir = mkdtempSync(join(tmp, 'fc-missing-'));
    writeFileSync(
      join(dir, 's.yaml'),
      [
        'edition: 3.0.0',
        'name: missing-interpreter',
        'resources:',
        '  web:',
        '    component: fc3',
        '    props:',
        '      region: cn-shanghai',
        '      functionName: web',
        '      runtime: custom.debian10',
        `      code: ${JSON.stringify(fixture('custom-runtime/code'))}`,
        '      customRuntimeConfig:',
        '        command: [/var/fc/lang/nodejs99/bin/no-such-node-here, ./server.js]',
        '      triggers:',
        '        - { triggerName: http, triggerType: http, triggerConfig: { methods: [GET] } }',
        '',
      ].join('\n'),
    );
    const { code, stderr } = await runCli([
      'dev',
      '--config',
      join(dir, 's.yaml'),
      '--port',
      '0',
      '--control-port',
      '0',
    ]);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n').at(-1)).toMatch(
      /^fc-async: web: the custom runtime `\/var\/fc\/lang\/nodejs99\/bin\/no-such-node-here \.\/server\.js` \(in .*\) could not be started: \/var\/fc\/lang\/nodejs99\/bin\/no-such-node-here is where FC keeps that program; this machine has none there, and no no-such-node-here in the function's PATH nor in fc-async dev's: install it, or name a program this machine has$/,
    );
  });
});

describe("fc-async dev's start banner", () => {
  it('names the command a custom runtime serves, not a handler its s.yaml does not have', async () => {
    let text = '';
    const emulator = await startEmulator({
      config,
      port: 0,
      controlPort: 0,
      outDir: tmp,
      output: (chunk) => {
        text += chunk;
      },
    });
    try {
      const lines = text.split('\n');
      // `web`: customRuntimeConfig.command [node] and args [./server.js]; `worker`: command [node, ./server.js].
      for (const name of ['web', 'worker']) {
        const line = lines.find((l) => l.trimStart().startsWith(`${name} `));
        expect(line, `the banner line of ${name} in:\n${text}`).toMatch(/ custom-runtime, node \.\/server\.js$/);
      }
      expect(text).not.toContain('index.handler');
    } finally {
      await emulator.close({ timeoutMs: 2000 });
    }
  });
});
