import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FcHttpEvent } from '@fc-async/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadEntry } from '../src/entry.js';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, waitFor } from './helpers.js';

const quiet = { output: () => {}, port: 0, controlPort: 0 };

/** What echo-handler.mjs answers. */
interface Echo {
  event: FcHttpEvent & { headers: Record<string, string>; requestContext: { timeEpoch: string } };
  context: Record<string, unknown>;
  env: Record<string, string>;
}

describe('the HTTP trigger of a plain FC 3.0 handler', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      ...quiet,
      entry: fixture('echo-handler.mjs'),
      name: 'echo',
      region: 'cn-beijing',
      accountId: '1234',
    });
  });
  afterAll(() => emulator.close());

  it('hands the function an FC 3.0 event with the common headers FC adds', async () => {
    const res = await fetch(`${emulator.triggerUrl}/a%20b/c?x=1&x=2&y=%C3%BC`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-custom': 'kept',
        'x-fc-access-key-secret': 'stolen',
        'x-fc-retry-count': '5',
        cookie: 'sid=1',
      },
      body: '{"a":1}',
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-fc-request-id');
    const { event, context, env } = (await res.json()) as Echo;
    expect(event).toMatchObject({
      version: 'v1',
      rawPath: '/a%20b/c',
      body: '{"a":1}',
      isBase64Encoded: false,
      queryParameters: { x: '1,2', y: 'ü' },
      requestContext: {
        accountId: '1234',
        requestId,
        http: { method: 'POST', path: '/a b/c', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
      },
    });
    expect(event.headers).toMatchObject({
      'Content-Type': 'application/json',
      'X-Custom': 'kept',
      'X-Fc-Request-Id': requestId,
      'X-Fc-Function-Name': 'echo',
      'X-Fc-Function-Handler': 'echo-handler.handler',
      'X-Fc-Region': 'cn-beijing',
      'X-Fc-Account-Id': '1234',
      'X-Fc-Qualifier': 'LATEST',
      'X-Fc-Control-Path': '/http-invoke',
    });
    expect(event.headers['X-Fc-Access-Key-Secret']).toBeUndefined();
    // The client's forged count is dropped; FC's own count of a sync call is 0.
    expect(event.headers['X-Fc-Retry-Count']).toBe('0');
    expect(event.requestContext.timeEpoch).toMatch(/^\d{13}$/);
    expect(context).toMatchObject({
      requestId,
      region: 'cn-beijing',
      accountId: '1234',
      function: { name: 'echo', timeout: 60 },
    });
    expect(env).toEqual({ name: 'echo' });
    expect(res.headers.get('x-echo')).toBe('yes');
    expect(res.headers.get('x-fc-ignored')).toBeNull();
  });

  it('base64-encodes a binary body', async () => {
    const body = Buffer.from([0, 1, 2, 255]);
    const res = await fetch(`${emulator.triggerUrl}/bin`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    const { event } = (await res.json()) as Echo;
    expect(event).toMatchObject({ isBase64Encoded: true, body: body.toString('base64') });
  });

  it('answers 502 with x-fc-error-type when the handler throws, without a stack', async () => {
    const res = await fetch(`${emulator.triggerUrl}/throw`);
    expect(res.status).toBe(502);
    expect(res.headers.get('x-fc-error-type')).toBe('UnhandledInvocationError');
    expect(await res.json()).toEqual({ errorMessage: 'the handler threw', errorType: 'TypeError' });
  });

  it('runs an async call of a plain handler through the async engine', async () => {
    const res = await fetch(`${emulator.triggerUrl}/job`, {
      headers: { 'x-fc-invocation-type': 'async', 'x-fc-async-task-id': 'plain_1' },
    });
    expect(res.status).toBe(202);
    const task = await waitFor(async () => {
      const r = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-tasks/plain_1`);
      const t = (await r.json()) as { status: string; returnPayload?: string };
      return t.status === 'Succeeded' ? t : undefined;
    });
    const { event } = JSON.parse(task.returnPayload as string) as Echo;
    expect(event.headers).toMatchObject({ 'X-Fc-Async-Task-Id': 'plain_1', 'X-Fc-Retry-Count': '0' });
  });
});

describe.each([
  ['a Koa app', 'koa-app.mjs', '/anything', { framework: 'koa', path: '/anything' }],
  ['a Fastify app (TypeScript)', 'fastify-app.ts', '/hi', { framework: 'fastify' }],
])('serving %s', (_label, file, path, expected) => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ ...quiet, entry: fixture(file) });
  });
  afterAll(() => emulator.close());

  it('answers with the app and an FC request id', async () => {
    const res = await fetch(`${emulator.triggerUrl}${path}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject(expected);
    expect(body.requestId).toBe(res.headers.get('x-fc-request-id'));
  });
});

describe('a CommonJS handler in callback style', () => {
  it('answers with what it passes to the callback', async () => {
    const emulator = await startEmulator({ ...quiet, entry: fixture('callback-handler.cjs') });
    try {
      const res = await fetch(`${emulator.triggerUrl}/cb`);
      expect(res.status).toBe(201);
      expect(await res.text()).toBe('callback /cb');
    } finally {
      await emulator.close();
    }
  });
});

describe('an entry with nothing to serve', () => {
  it('is refused with the exports it found', async () => {
    await expect(startEmulator({ ...quiet, entry: fixture('not-servable.mjs') })).rejects.toThrow(
      /exports no Express, Koa or Fastify app and no FC handler .*other exports: answer/,
    );
  });

  it("points an entry that exports nothing (a custom runtime's start script) to an s.yaml that starts it", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-start-script-'));
    // What `fc-async dev src/main.ts` loads for a custom runtime: it serves itself, exports nothing.
    writeFileSync(join(dir, 'main.mjs'), "import { createServer } from 'node:http';\nvoid createServer;\n");
    writeFileSync(join(dir, 'main.cjs'), "require('node:http');\n");
    try {
      for (const file of ['main.mjs', 'main.cjs']) {
        await expect(loadEntry(join(dir, file))).rejects.toMatchObject({
          code: 'EntryNotServable',
          message: expect.stringMatching(
            /other exports: none\); an entry that listens itself \(a custom runtime's start script, `listen\(app\)`\) is served from an s\.yaml whose `customRuntimeConfig\.command` starts it: `fc-async dev --config s\.yaml`$/,
          ),
        });
      }
      // An entry with exports, none servable, is told what it exports, not this.
      await expect(loadEntry(fixture('not-servable.mjs'))).rejects.toThrow(/other exports: answer\)$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a servable default export when the s.yaml handler asked for another name', async () => {
    // `handler: app.app` on a module with `export default app`.
    await expect(loadEntry(fixture('jobs-app.ts'), 'app')).rejects.toThrow(
      /\(looked at app; other exports: default\); FC calls the export the s\.yaml handler names: export it, e\.g\. `export const app = createHandler\(app\)`/,
    );
  });

  it('refuses an ES module whose handler is only a property of its default export (FC calls the named export)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-esm-default-'));
    const source = 'export default { handler: async () => "served" };\n';
    writeFileSync(join(dir, 'index.mjs'), source);
    mkdirSync(join(dir, 'module'));
    writeFileSync(join(dir, 'module/package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'module/index.js'), source);
    for (const file of [join(dir, 'index.mjs'), join(dir, 'module/index.js')]) {
      for (const name of ['handler', undefined]) {
        await expect(loadEntry(file, name)).rejects.toMatchObject({
          code: 'EntryNotServable',
          message: expect.stringMatching(
            /`handler` is a property of the default export, but FC calls the ES module's named export `handler`: write `export const handler = \.\.\.`/,
          ),
        });
      }
    }
    // A CommonJS module.exports is what FC reads its handler from.
    writeFileSync(join(dir, 'index.cjs'), 'module.exports = { handler: async () => "served" };\n');
    await expect(loadEntry(join(dir, 'index.cjs'), 'handler')).resolves.toMatchObject({ kind: 'fc-handler' });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('several HTTP functions', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ ...quiet, config: fixture('multi/s.yaml') });
  });
  afterAll(() => emulator.close());

  it('addresses each by path prefix, which the function does not see', async () => {
    expect(await (await fetch(`${emulator.triggerUrl}/a/x/y`)).text()).toBe('a /x/y GET');
    expect(await (await fetch(`${emulator.triggerUrl}/b?k=v`)).text()).toBe('b / {"k":"v"}');
  });

  it('addresses each by a <function>.localhost Host header', async () => {
    const { request } = await import('node:http');
    const url = new URL(emulator.triggerUrl);
    const text = await new Promise<string>((resolve, reject) => {
      request(
        { host: url.hostname, port: url.port, path: '/x', headers: { host: `b.localhost:${url.port}` } },
        (res) => {
          let out = '';
          res.on('data', (c) => {
            out += c;
          });
          res.on('end', () => resolve(out));
        },
      )
        .on('error', reject)
        .end();
    });
    expect(text).toBe('b /x');
  });

  it('matches the Host label to a function name in any case, as host names are case-insensitive', async () => {
    const { request } = await import('node:http');
    const url = new URL(emulator.triggerUrl);
    const get = (host: string) =>
      new Promise<{ status?: number; text: string }>((resolve, reject) => {
        request({ host: url.hostname, port: url.port, path: '/x', headers: { host } }, (res) => {
          let text = '';
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode, text }));
        })
          .on('error', reject)
          .end();
      });
    expect(await get(`B.localhost:${url.port}`)).toEqual({ status: 200, text: 'b /x' });
    expect(await get(`A.LOCALHOST:${url.port}`)).toEqual({ status: 200, text: 'a /x GET' });
    expect((await get(`c.localhost:${url.port}`)).status).toBe(404);
  });

  it('answers 404 for a path of no function and 405 for a method the trigger does not accept', async () => {
    const none = await fetch(`${emulator.triggerUrl}/c/x`);
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ code: 'FunctionNotFound', message: expect.stringContaining('/a/, /b/') });
    const post = await fetch(`${emulator.triggerUrl}/a/x`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET'); // RFC 9110: a 405 says what is allowed
    expect(await post.json()).toMatchObject({ code: 'MethodNotAllowed' });
  });

  it("answers a method FC's API path does not take 405 with the methods it does take", async () => {
    for (const [method, path, allow] of [
      ['DELETE', 'functions/a/async-tasks', 'GET'],
      ['POST', 'functions/a/async-tasks/t1', 'GET'],
      ['GET', 'functions/a/async-tasks/t1/stop', 'PUT'],
      ['PATCH', 'functions/a/async-invoke-config', 'GET, PUT, DELETE'],
      ['GET', 'functions/a/invocations', 'POST'],
      ['PUT', 'async-invoke-configs', 'GET'],
    ]) {
      const res = await fetch(new URL(`2023-03-30/${path}`, emulator.controlUrl), { method });
      expect([res.status, res.headers.get('allow'), ((await res.json()) as { Code: string }).Code]).toEqual([
        405,
        allow,
        'MethodNotAllowed',
      ]);
    }
  });
});

describe('text logs', () => {
  const lines: string[] = [];
  let emulator: Emulator;
  afterEach(() => emulator?.close());

  it('prints one readable line per invocation and per attempt', async () => {
    emulator = await startEmulator({
      ...quiet,
      entry: fixture('echo-handler.mjs'),
      name: 'echo',
      output: (text) => lines.push(...text.split('\n').filter(Boolean)),
    });
    expect(lines.join('\n')).toMatch(/echo .*http:\/\/127\.0\.0\.1:\d+\//);
    await fetch(`${emulator.triggerUrl}/hello?token=secret`);
    await fetch(`${emulator.triggerUrl}/later`, {
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'text_1' },
    });
    const attempt = await waitFor(() => lines.find((l) => l.includes('task text_1') && l.includes('attempt 1')));
    expect(attempt).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} echo\s+Task\s+Succeeded\s+attempt 1\s+\d+ ms\s+1-[0-9a-f-]+ task text_1$/,
    );
    const sync = lines.find((l) => l.includes('GET /hello'));
    expect(sync).toMatch(/echo\s+Sync\s+200\s+GET \/hello\s+\d+ ms\s+1-/);
    expect(lines.join('\n')).not.toContain('secret');
    expect(lines.find((l) => l.includes('GET /later'))).toMatch(/Async\s+202/);
  });
});

describe('JSON logs of stopped tasks', () => {
  const lines: Record<string, unknown>[] = [];
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      ...quiet,
      entry: fixture('jobs-app.ts'),
      name: 'jobs',
      logFormat: 'json',
      output: (text) => {
        for (const line of text.split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      },
    });
  });
  afterAll(() => emulator.close());

  const accept = (taskId: string, headers: Record<string, string> = {}, body: object = { ms: 5000 }) =>
    fetch(`${emulator.triggerUrl}/jobs`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': taskId,
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const stop = (taskId: string) =>
    fetch(new URL(`2023-03-30/functions/jobs/async-tasks/${taskId}/stop`, emulator.controlUrl), { method: 'PUT' });
  const attempts = (taskId: string) => lines.filter((l) => l.kind === 'attempt' && l.taskId === taskId);

  it('logs a running task that is stopped once, as the attempt it stopped', async () => {
    expect((await accept('stop_running')).status).toBe(202);
    await waitFor(() => lines.find((l) => l.kind === 'invocation' && l.taskId === 'stop_running'));
    await waitFor(async () => {
      const res = await fetch(new URL('2023-03-30/functions/jobs/async-tasks/stop_running', emulator.controlUrl));
      return ((await res.json()) as { status: string }).status === 'Running' ? true : undefined;
    });
    expect((await stop('stop_running')).status).toBe(200);
    await waitFor(() => attempts('stop_running').length > 0 || undefined);
    // A second line would come right after the first (the task's end is reported at once).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(attempts('stop_running').map((l) => [l.attempt, l.status])).toEqual([[1, 'Stopped']]);
  });

  it('logs a task stopped before it ran once, with attempt 0', async () => {
    expect((await accept('stop_queued', { 'x-fc-async-delay': '60' })).status).toBe(202);
    expect((await stop('stop_queued')).status).toBe(200);
    await waitFor(() => attempts('stop_queued').length > 0 || undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(attempts('stop_queued').map((l) => [l.attempt, l.status])).toEqual([[0, 'Stopped']]);
  });

  it('logs a task stopped in the backoff after a failed attempt with that attempt, not 0', async () => {
    expect((await accept('stop_backoff', {}, { fail: true })).status).toBe(202);
    await waitFor(() => attempts('stop_backoff').length > 0 || undefined);
    expect((await stop('stop_backoff')).status).toBe(200);
    await waitFor(() => attempts('stop_backoff').length > 1 || undefined);
    expect(attempts('stop_backoff').map((l) => [l.attempt, l.status])).toEqual([
      [1, 'Retrying'],
      [1, 'Stopped'],
    ]);
  });

  it('logs a refused async call as Async, with its status', async () => {
    expect((await accept('twice', { 'x-fc-async-delay': '60' })).status).toBe(202);
    expect((await accept('twice', { 'x-fc-async-delay': '60' })).status).toBe(409);
    const badDelay = await accept('bad_delay', { 'x-fc-async-delay': '0' });
    expect(badDelay.status).toBe(400);
    // A task id detection itself refuses: the call still asked to run async.
    expect((await accept('9 bad id')).status).toBe(400);
    const refused = await waitFor(() => {
      const found = lines.filter((l) => l.kind === 'invocation' && [409, 400].includes(l.status as number));
      return found.length === 3 ? found : undefined;
    });
    // The duplicate's line names the task it asked for; an invalid id is not logged as a task id.
    expect(refused.map((l) => [l.type, l.status, l.taskId])).toEqual([
      ['Async', 409, 'twice'],
      ['Async', 400, 'bad_delay'],
      ['Async', 400, undefined],
    ]);
    // A sync call stays Sync.
    await fetch(`${emulator.triggerUrl}/jobs`, { method: 'POST', body: '{"ms":0}' });
    const sync = await waitFor(() => lines.find((l) => l.kind === 'invocation' && l.type === 'Sync'));
    expect(sync.status).toBe(200);
  });
});

/**
 * A folder with `work` (an HTTP function whose `work` export is `workSource`) sending its `side`
 * records to `sink`, an event function that takes 100 ms and appends each record to a file.
 */
function workAndSink(prefix: string, workSource: string, side: 'onSuccess' | 'onFailure') {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const received = join(root, 'received.jsonl');
  writeFileSync(
    join(root, 'fns.mjs'),
    `import { appendFileSync } from 'node:fs';
export const work = ${workSource};
export const sink = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, 100));
  appendFileSync(${JSON.stringify(received)}, event.toString('utf8') + '\\n');
  return 'ok';
};
`,
  );
  writeFileSync(
    join(root, 's.yaml'),
    `resources:
  work:
    component: fc3
    props:
      functionName: work
      code: ./
      handler: fns.work
      runtime: nodejs20
      triggers:
        - triggerName: http
          triggerType: http
      asyncInvokeConfig:
        destinationConfig:
          ${side}:
            destination: acs:fc:cn-hangzhou:0:functions/sink
  sink:
    component: fc3
    props:
      functionName: sink
      code: ./
      handler: fns.sink
      runtime: nodejs20
`,
  );
  /** The records `sink` received. */
  const records = () =>
    readFileSync(received, { encoding: 'utf8', flag: 'a+' })
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { requestContext: { requestId: string; condition: string } });
  return { root, config: join(root, 's.yaml'), records };
}

describe('shutting down with a destination function of the same s.yaml', () => {
  const fixture = workAndSink(
    'fc-async-close-order-',
    `async () => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { statusCode: 200, body: 'done' };
}`,
    'onSuccess',
  );
  afterAll(() => rmSync(fixture.root, { recursive: true, force: true }));

  it('keeps the destination function open until the tasks that finish while draining have sent their records', async () => {
    const emulator = await startEmulator({ ...quiet, config: fixture.config });
    const requestIds: string[] = [];
    for (const taskId of ['drain_1', 'drain_2']) {
      const res = await fetch(emulator.triggerUrl, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
      });
      expect(res.status).toBe(202);
      requestIds.push(res.headers.get('x-fc-request-id') as string);
    }
    // Ctrl-C while both tasks run: they finish within the shutdown timeout, and so do their deliveries.
    await emulator.close({ timeoutMs: 5000 });
    const records = fixture.records();
    expect(records.map((r) => r.requestContext.requestId).sort()).toEqual([...requestIds].sort());
    expect(records.map((r) => r.requestContext.condition)).toEqual(['', '']);
  });
});

describe('shutting down past the deadline with a destination function', () => {
  // Past the deadline: stopped. It ends on its own 3 s after it started, ignoring its stop (close()
  // waits for it), so that a close() that comes late on a busy machine still finds it running.
  const fixture = workAndSink(
    'fc-async-close-grace-',
    `() => new Promise((resolve) => setTimeout(() => resolve('late'), 3000))`,
    'onFailure',
  );
  afterAll(() => rmSync(fixture.root, { recursive: true, force: true }));

  it('the onFailure record of a task stopped at the deadline still runs in the destination function', async () => {
    const lines: string[] = [];
    const output = (text: string) => lines.push(...text.split('\n').filter(Boolean));
    const emulator = await startEmulator({ ...quiet, output, config: fixture.config });
    const res = await fetch(emulator.triggerUrl, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'stuck_1' },
    });
    expect(res.status).toBe(202);
    // Running when close() comes (not a moment has passed).
    await waitFor(async () => {
      const task = await fetch(new URL('2023-03-30/functions/work/async-tasks/stuck_1', emulator.controlUrl));
      return ((await task.json()) as { status: string }).status === 'Running' || undefined;
    });
    // The whole timeout goes to `work`, whose task is then stopped: its record reaches `sink` last.
    await emulator.close({ timeoutMs: 300 });
    expect(fixture.records().map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    // The record's own task in `sink` ran to its end, rather than being stopped as `sink` closed.
    expect(lines.filter((l) => /^\S+ sink +Task/.test(l))).toEqual([expect.stringMatching(/Task +Succeeded/)]);
  });
});

describe('shutting down while a sync call waits for its function', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-close-sync-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(
    join(root, 'slow.mjs'),
    `import { appendFileSync } from 'node:fs';
export const handler = async (event) => {
  const { ms } = JSON.parse(event).queryParameters;
  appendFileSync(${JSON.stringify(join(root, 'started'))}, ms + '\\n');
  await new Promise((r) => setTimeout(r, Number(ms)));
  return { statusCode: 200, body: "answered" };
};
`,
  );
  /** The calls whose handler has started, by their `ms`. */
  const started = () =>
    readFileSync(join(root, 'started'), { encoding: 'utf8', flag: 'a+' }).split('\n').filter(Boolean);

  it('answers it when it ends within the shutdown timeout, else 503 at its end, with a log line', async () => {
    const lines: string[] = [];
    const output = (text: string) => lines.push(...text.split('\n').filter(Boolean));
    const emulator = await startEmulator({ ...quiet, output, entry: join(root, 'slow.mjs'), name: 'slow' });
    const quick = fetch(`${emulator.triggerUrl}/?ms=300`);
    const slow = fetch(`${emulator.triggerUrl}/?ms=5000`);
    // Both under way when the shutdown comes: their handlers have started (not a moment has passed).
    await waitFor(() => (started().length === 2 ? true : undefined));
    await emulator.close({ timeoutMs: 1000 });
    const [a, b] = await Promise.all([quick, slow]);
    expect([a.status, await a.text()]).toEqual([200, 'answered']);
    expect([b.status, await b.json()]).toEqual([
      503,
      { code: 'ServiceUnavailable', message: 'The emulator shut down before the function answered' },
    ]);
    expect(lines.filter((l) => l.includes('shut down before the function answered'))).toHaveLength(1);
  });
});

describe("the client's address", () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-client-ip-'));
  let emulator: Emulator;
  beforeAll(async () => {
    writeFileSync(
      join(root, 'fc2.cjs'),
      'exports.ip = (req, resp) => { resp.setStatusCode(200); resp.send(String(req.clientIP)); };\n',
    );
    writeFileSync(
      join(root, 'fc3.mjs'),
      'export const ip = async (event) => ({ statusCode: 200, body: JSON.parse(event).requestContext.http.sourceIp });\n',
    );
    writeFileSync(
      join(root, 's.yaml'),
      `resources:
  two:
    component: fc
    props:
      function: { name: two, codeUri: ./, handler: fc2.ip, runtime: nodejs18 }
      triggers: [{ name: http, type: http, config: { methods: [GET] } }]
  three:
    component: fc3
    props:
      { functionName: three, code: ./, handler: fc3.ip, runtime: nodejs20, triggers: [{ triggerName: http, triggerType: http }] }
`,
    );
    emulator = await startEmulator({ ...quiet, config: join(root, 's.yaml') });
  });
  afterAll(async () => {
    await emulator?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A GET from another loopback address (Linux routes all of 127.0.0.0/8 to lo). */
  const getFrom = async (localAddress: string, path: string) => {
    const { request } = await import('node:http');
    const url = new URL(emulator.triggerUrl);
    return new Promise<string>((resolve, reject) => {
      request({ host: url.hostname, port: url.port, path, localAddress }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
  };

  it("is the TCP peer in FC 2.0's req.clientIP and FC 3.0's requestContext.http.sourceIp", async () => {
    expect(await getFrom('127.0.0.2', '/two/')).toBe('127.0.0.2');
    expect(await getFrom('127.0.0.3', '/three/')).toBe('127.0.0.3');
  });
});

describe('an EventBridge destination, not reachable locally', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-eventbridge-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(
    join(root, 'ok.mjs'),
    "export const handler = async () => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'done' });\n",
  );
  writeFileSync(
    join(root, 's.yaml'),
    `resources:
  jobs:
    component: fc3
    props:
      functionName: jobs
      code: ./
      handler: ok.handler
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:eventbridge:cn-hangzhou:123:eventbus/default' }
`,
  );

  it('gets the record as the data of a CloudEvent typed fc:AsyncInvoke:succeeded, as FC sends it', async () => {
    const emulator = await startEmulator({ ...quiet, config: join(root, 's.yaml'), outDir: join(root, 'out') });
    try {
      const res = await fetch(emulator.triggerUrl, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'to_bus' },
      });
      expect(res.status).toBe(202);
      const file = join(root, 'out', 'jobs.onSuccess.jsonl');
      const line = await waitFor(() => {
        try {
          return readFileSync(file, 'utf8').split('\n')[0] || undefined;
        } catch {
          return undefined;
        }
      });
      const event = JSON.parse(line);
      expect(event).toMatchObject({
        specversion: '1.0',
        type: 'fc:AsyncInvoke:succeeded',
        id: res.headers.get('x-fc-request-id'),
        data: {
          requestContext: { requestId: res.headers.get('x-fc-request-id'), condition: '' },
          responsePayload: 'done',
        },
      });
      expect(new Date(event.time).getTime()).toBe(event.data.timestamp);
    } finally {
      await emulator.close();
    }
  });
});
