import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { AsyncTask } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmulatorOptions, startEmulator } from '../src/index.js';
import { PKG, waitFor } from './helpers.js';

const execFileAsync = promisify(execFile);

// An entry that exports an fc-async handler (what docs/getting-started.md has users write) takes
// what its own options leave out from the emulator, as the handlers the emulator builds do: the
// --store/--redis backend, the emulator's log, the s.yaml timeout; and an s.yaml destination is
// called as well as the handler's own, as on FC.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-entry-defaults-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `orders.mjs` in `dir`: an fc-async handler over `app` (a request listener's source) with `options`. */
function entry(dir: string, app: string, options = '{}'): string {
  const file = join(dir, 'orders.mjs');
  writeFileSync(
    file,
    `import { createFcHandler, jsonlDestination, memory } from ${url('@fc-async/core')};
export const handler = createFcHandler(${app}, ${options});
`,
  );
  return file;
}

/** An s.yaml serving `orders.handler` over HTTP, with `props` among its props and `after` its trigger. */
const sYaml = (props: string, after = '') => `edition: 3.0.0
name: entry-defaults
resources:
  orders:
    component: fc3
    props:
      functionName: orders
      runtime: nodejs20
      code: ./
      handler: orders.handler
${props}      triggers:
        - triggerName: http
          triggerType: http
${after}`;

async function start(options: EmulatorOptions, lines: string[] = []) {
  const emulator = await startEmulator({ port: 0, controlPort: 0, output: (line) => lines.push(line), ...options });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return emulator;
}

const task = async (controlUrl: string, fn: string, id: string) =>
  (await (await fetch(`${controlUrl}/2023-03-30/functions/${fn}/async-tasks/${id}`)).json()) as AsyncTask & {
    Code?: string;
  };

const accept = async (triggerUrl: string, id: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${triggerUrl}/`, {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': id, ...headers },
    body: 'work',
  });
  expect(res.status).toBe(202);
};

describe('an fc-async handler entry without a backend of its own', () => {
  it('keeps its tasks in --store sqlite:PATH across a restart, and says nothing about it', async () => {
    const dir = folder();
    const file = entry(dir, `(req, res) => res.end('ran')`);
    const store = `sqlite:${join(dir, 'tasks.db')}`;
    const lines: string[] = [];
    const first = await start({ entry: file, name: 'orders', store }, lines);
    await accept(first.triggerUrl, 'kept_1', { 'x-fc-async-delay': '3599' });
    await first.close({ timeoutMs: 1000 });

    expect(existsSync(join(dir, 'tasks.db'))).toBe(true);
    expect(lines.join('\n')).not.toContain('do not apply');
    // The same file: the second emulator gets a module instance of its own, not the closed handler.
    const second = await start({ entry: file, name: 'orders', store });
    expect(await task(second.controlUrl, 'orders', 'kept_1')).toMatchObject({ taskId: 'kept_1', status: 'Enqueued' });
  });

  it('logs through the emulator, in its text format', async () => {
    const dir = folder();
    const file = entry(dir, `(req, res) => { throw new Error('boom at ' + req.url); }`);
    const lines: string[] = [];
    const emulator = await start({ entry: file, name: 'orders' }, lines);
    const res = await fetch(`${emulator.triggerUrl}/fails`);
    expect(res.status).toBe(500);

    const failure = await waitFor(() => lines.find((line) => line.includes('boom at /fails')));
    expect(failure.startsWith('{')).toBe(false);
    expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
  });

  it.each([
    [
      'express',
      `import express from ${url('express')};
import { createHandler } from ${url('@fc-async/express')};
const app = express();
app.get('/fails', () => { throw new Error('boom at /fails'); });
export const handler = createHandler(app);`,
    ],
    [
      'koa',
      `import Koa from ${url('koa')};
import { createHandler } from ${url('@fc-async/koa')};
const app = new Koa();
app.use(() => { throw new Error('boom at /fails'); });
export const handler = createHandler(app);`,
    ],
    [
      'fastify',
      `import Fastify from ${url('fastify')};
import { createHandler } from ${url('@fc-async/fastify')};
const app = Fastify();
app.get('/fails', async () => { throw new Error('boom at /fails'); });
export const handler = createHandler(app);`,
    ],
  ])(
    "a %s adapter's createHandler logs the app's errors and the engine's warnings through the emulator too",
    async (_name, source) => {
      const dir = folder();
      const file = join(dir, 'orders.mjs');
      writeFileSync(file, `${source}\n`);
      const lines: string[] = [];
      const emulator = await start({ entry: file, name: 'orders' }, lines);
      expect((await fetch(`${emulator.triggerUrl}/fails`)).status).toBe(500);
      await waitFor(() => lines.find((line) => line.includes('boom at /fails')));
      // A duplicate task id: the engine's warning.
      await accept(emulator.triggerUrl, 'dup_1', { 'x-fc-async-delay': '3599' });
      const dup = await fetch(`${emulator.triggerUrl}/`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'dup_1' },
      });
      expect(dup.status).toBe(409);
      expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
    },
  );

  it("runs each attempt within the s.yaml function's timeout", async () => {
    const dir = folder();
    entry(dir, `(req, res) => setTimeout(() => res.end('late'), 5000)`, '{ async: { maxAsyncRetryAttempts: 0 } }');
    writeFileSync(join(dir, 's.yaml'), sYaml('      timeout: 1\n'));
    const emulator = await start({ config: join(dir, 's.yaml') });
    await accept(emulator.triggerUrl, 'slow_1');
    const ended = await waitFor(async () => {
      const t = await task(emulator.controlUrl, 'orders', 'slow_1');
      return t.status === 'Failed' ? t : undefined;
    }, 4000);
    expect(ended.taskErrorMessage).toMatch(/timed out|time out/i);
  });

  it("says so when its own async.timeoutSeconds is above the s.yaml function's timeout (FC's ceiling)", async () => {
    const dir = folder();
    entry(dir, `(req, res) => res.end('ran')`, '{ async: { timeoutSeconds: 900 } }');
    writeFileSync(join(dir, 's.yaml'), sYaml('      timeout: 5\n'));
    const lines: string[] = [];
    await start({ config: join(dir, 's.yaml') }, lines);
    expect(lines.join('\n')).toContain(
      "orders: its handler's async.timeoutSeconds (900 s) is above the function's timeout (5 s)",
    );
  });

  it("says nothing when its own async.timeoutSeconds is the s.yaml function's timeout", async () => {
    const dir = folder();
    entry(dir, `(req, res) => res.end('ran')`, '{ async: { timeoutSeconds: 5 } }');
    writeFileSync(join(dir, 's.yaml'), sYaml('      timeout: 5\n'));
    const lines: string[] = [];
    await start({ config: join(dir, 's.yaml') }, lines);
    expect(lines.join('\n')).toContain('fc-async dev: 1 function');
    expect(lines.join('\n')).not.toContain('async.timeoutSeconds');
  });
});

describe('an fc-async handler entry that makes two handlers', () => {
  it('says --store went to the first one made', async () => {
    const dir = folder();
    const file = join(dir, 'two.mjs');
    writeFileSync(
      file,
      `import { createFcHandler } from ${url('@fc-async/core')};
export const helper = createFcHandler((req, res) => res.end('helper'));
export const handler = createFcHandler((req, res) => res.end('ran'));
`,
    );
    const lines: string[] = [];
    await start({ entry: file, name: 'orders', store: `sqlite:${join(dir, 'tasks.db')}` }, lines);
    expect(lines.join('\n')).toContain(
      'orders: its entry made 2 fc-async handlers; --store and --redis went to the first one made',
    );
  });
});

describe('an fc-async handler entry with a backend of its own', () => {
  it('keeps it, and says --store does not apply', async () => {
    const dir = folder();
    const file = entry(dir, `(req, res) => res.end('ran')`, '{ async: { backend: memory() } }');
    const lines: string[] = [];
    await start({ entry: file, name: 'orders', store: `sqlite:${join(dir, 'tasks.db')}` }, lines);

    expect(lines.join('\n')).toContain('orders is an fc-async handler with its own async backend');
    expect(existsSync(join(dir, 'tasks.db'))).toBe(false);
  });
});

describe('an s.yaml destination of an fc-async handler entry with destinations of its own', () => {
  it('is called as well as the handler’s own, as FC calls both', async () => {
    const dir = folder();
    const own = join(dir, 'own.jsonl');
    const fromFc = join(dir, 'fc.jsonl');
    entry(
      dir,
      `(req, res) => res.end('ran')`,
      `{ destinations: { onSuccess: jsonlDestination(${JSON.stringify(own)}) } }`,
    );
    writeFileSync(
      join(dir, 'dest.mjs'),
      `import { appendFileSync } from 'node:fs';
export const handler = async (event) => {
  appendFileSync(${JSON.stringify(fromFc)}, event.toString('utf8') + '\\n');
  return 'ok';
};
`,
    );
    writeFileSync(
      join(dir, 's.yaml'),
      sYaml(
        '',
        `      asyncInvokeConfig:
        destinationConfig:
          onSuccess:
            destination: acs:fc:cn-hangzhou:0:functions/dest
  dest:
    component: fc3
    props:
      functionName: dest
      runtime: nodejs20
      code: ./
      handler: dest.handler
`,
      ),
    );
    const emulator = await start({ config: join(dir, 's.yaml') });
    await accept(emulator.triggerUrl, 'both_1');

    const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
    await waitFor(() => (read(own) && read(fromFc) ? true : undefined));
    for (const file of [own, fromFc]) {
      const record = JSON.parse(read(file).trim()) as {
        requestContext: { condition: string };
        responsePayload: string;
      };
      expect(record).toMatchObject({ requestContext: { condition: '' }, responsePayload: 'ran' });
    }
    expect(await task(emulator.controlUrl, 'orders', 'both_1')).toMatchObject({ destinationStatus: 'Succeeded' });
  });
});

describe('an fc-async handler entry served by a second emulator in the same process', () => {
  const core = url('@fc-async/core');
  it.each([
    [
      'ESM',
      'orders.mjs',
      `import { createFcHandler } from ${core};\nexport const handler = createFcHandler((req, res) => res.end('ran'));`,
    ],
    [
      'CommonJS',
      'orders.cjs',
      `const { createFcHandler } = require(${JSON.stringify(new URL(JSON.parse(core)).pathname)});\nexports.handler = createFcHandler((req, res) => res.end('ran'));`,
    ],
    [
      'TypeScript',
      'orders.ts',
      `import { createFcHandler } from ${core};\nexport const handler = createFcHandler((req, res) => res.end('ran'));`,
    ],
  ])('(%s) gets a handler of its own, not the one the first closed', async (_, name, source) => {
    const file = join(folder(), name);
    writeFileSync(file, source);
    for (const round of [1, 2]) {
      const emulator = await start({ entry: file, name: 'orders' });
      await accept(emulator.triggerUrl, `round_${round}`);
      await emulator.close({ timeoutMs: 1000 });
    }
  });

  it('(CommonJS and TypeScript as CommonJS, in plain Node) gets a handler of its own too', async () => {
    // vitest's module runner evaluates each import afresh; plain Node's import() of a CommonJS
    // module serves require's cache whatever the URL's query (a script's, node:test's second start).
    const dir = folder();
    const handler = `exports.handler = require(${JSON.stringify(new URL(JSON.parse(core)).pathname)}).createFcHandler((req, res) => res.end('ran'));\n`;
    writeFileSync(join(dir, 'orders.cjs'), handler);
    writeFileSync(
      join(dir, 'orders.ts'),
      `import { createFcHandler } from ${core};\nexport const handler = createFcHandler((req, res) => res.end('ran'));\n`,
    );
    writeFileSync(
      join(dir, 'script.mjs'),
      `import { startEmulator } from ${JSON.stringify(pathToFileURL(join(PKG, 'src/index.ts')).href)};
const statuses = [];
for (const entry of ['orders.cjs', 'orders.ts']) {
  for (let round = 0; round < 2; round++) {
    const emulator = await startEmulator({ entry: ${JSON.stringify(dir)} + '/' + entry, port: 0, controlPort: 0, output: () => {} });
    const res = await fetch(emulator.triggerUrl, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    statuses.push(res.status);
    await emulator.close({ timeoutMs: 1000 });
  }
}
console.log(JSON.stringify(statuses));
`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const run = await execFileAsync(process.execPath, ['--import', tsx, join(dir, 'script.mjs')], { timeout: 60_000 });
    // It was [202, 503, 202, 503]: the second start served the handler the first one closed.
    expect(JSON.parse(run.stdout.trim().split('\n').pop() ?? 'null')).toEqual([202, 202, 202, 202]);
  }, 90_000);
});

describe('an entry that awaits its fc-async handler at its top level, with --store sqlite:PATH', () => {
  // The store the emulator offers opens only once every entry loaded: a wait for it during the
  // load never ended (startEmulator hung, with no BackendNotReady).
  const source = (exported: string) => `import { createFcHandler } from ${url('@fc-async/core')};
const inner = createFcHandler((req, res) => res.end('ran'));
await inner.engine.whenReady();
${exported}
`;

  it('starts, and the handler keeps its tasks in the file', async () => {
    const dir = folder();
    const file = join(dir, 'orders.mjs');
    writeFileSync(file, source('export const handler = inner;'));
    const store = `sqlite:${join(dir, 'tasks.db')}`;
    const lines: string[] = [];
    const first = await start({ entry: file, name: 'orders', store }, lines);
    expect(lines.join('\n')).toContain('orders: its fc-async handler waited for its async backend');
    await accept(first.triggerUrl, 'early_1', { 'x-fc-async-delay': '3599' });
    await first.close({ timeoutMs: 1000 });
    const second = await start({ entry: file, name: 'orders', store });
    expect(await task(second.controlUrl, 'orders', 'early_1')).toMatchObject({ status: 'Enqueued' });
  });

  it('a plain handler calling it starts too: its engine keeps the file, the emulator says its own is in memory', async () => {
    const dir = folder();
    const file = join(dir, 'orders.mjs');
    writeFileSync(file, source('export async function handler(event, context) { return inner(event, context); }'));
    const lines: string[] = [];
    const emulator = await start({ entry: file, name: 'orders', store: `sqlite:${join(dir, 'tasks.db')}` }, lines);
    expect(lines.join('\n')).toContain("the emulator's engine for it keeps its tasks in memory");
    await accept(emulator.triggerUrl, 'early_2');
    const done = await waitFor(async () => {
      const t = await task(emulator.controlUrl, 'orders', 'early_2');
      return t.status === 'Succeeded' ? t : undefined;
    });
    expect(Buffer.from(done.returnPayload as string, 'base64').toString()).toBe('ran');
    expect(lines.filter((line) => /ERROR|in use/.test(line))).toEqual([]);
  });
});

describe('a plain handler over an fc-async handler that its module waits for once loaded, another entry still loading', () => {
  // The inner engine's wait came after the emulator had taken the backend for its own engine (the
  // entry had loaded) but before the gate opened (another function's entry still loading): the
  // inner engine got the real task file too, and the start failed with SQLITE_BUSY.
  it('starts with one engine on the task file, and runs the task once', async () => {
    const dir = folder();
    const runs = join(dir, 'runs.log');
    writeFileSync(runs, '');
    writeFileSync(
      join(dir, 'orders.mjs'),
      `import { appendFileSync } from 'node:fs';
import { createFcHandler } from ${url('@fc-async/core')};
const inner = createFcHandler((req, res) => { appendFileSync(${JSON.stringify(runs)}, req.url + '\\n'); res.end('ok'); });
setTimeout(() => void inner.engine.whenReady(), 0);
export async function handler(event, context) { return inner(event, context); }
`,
    );
    writeFileSync(
      join(dir, 'slow.mjs'),
      'await new Promise((r) => setTimeout(r, 300));\nexport const handler = async () => "slow";\n',
    );
    const slow = `  slow:
    component: fc3
    props:
      functionName: slow
      runtime: nodejs20
      code: ./
      handler: slow.handler
      triggers:
        - triggerName: http
          triggerType: http
`;
    const config = join(dir, 's.yaml');
    writeFileSync(config, sYaml('', slow));
    const lines: string[] = [];
    const emulator = await start({ config, store: `sqlite:${join(dir, 'tasks.db')}` }, lines);
    await accept(`${emulator.triggerUrl}/orders`, 'late_wait_1');
    await waitFor(async () => (await task(emulator.controlUrl, 'orders', 'late_wait_1')).status === 'Succeeded');
    expect(readFileSync(runs, 'utf8')).toBe('/\n');
    expect(lines.filter((line) => /ERROR|in use|waited for its async backend/.test(line))).toEqual([]);
  });
});
