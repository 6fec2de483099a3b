import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { example, fixture, invokeSync, runCli } from './helpers.js';

describe('fc-async dev refuses a bad flag in one line', () => {
  it.each([
    ['a port that is not a number', ['--port', 'abc'], /--port.*'abc'/],
    ['--concurrency 0', ['--concurrency', '0'], /--concurrency.*'0'/],
    ['--log-format xml', ['--log-format', 'xml'], /--log-format.*'xml'/],
    ['an unknown flag', ['--bogus'], /unknown option '--bogus'/],
    ['a flag without its value', ['--retry-delay'], /--retry-delay.*argument missing/],
    ['an empty --region', ['--region', ''], /Expected --region /],
    ['an --account-id that is not digits', ['--account-id', 'a b'], /Expected --account-id /],
  ])('%s: fc-async: <problem> on stderr, exit 1, no usage dump', async (_label, args, message) => {
    const { code, stderr } = await runCli(['dev', example('jobs/app.ts'), ...args]);
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^fc-async: /);
    expect(lines[0]).toMatch(message);
  });
});

describe('fc-async with an unknown command', () => {
  it("points at fc-async's own --help, which lists the commands, not dev's", async () => {
    const { code, stderr } = await runCli(['serve', 'app.ts']);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe("fc-async: unknown command 'serve' (see fc-async --help)");
  });
});

describe('fc-async dev refuses an entry it cannot serve in one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-entry-'));
  mkdirSync(join(dir, 'folder'));
  writeFileSync(join(dir, 'broken.ts'), 'export const handler = (a: number => a;\n');
  writeFileSync(join(dir, 'number.mjs'), 'export const handler = 42;\n');
  writeFileSync(join(dir, 'broken.mjs'), 'const a = 1;\nexport const handler = () => a;\nlet x error = 2;\n');
  writeFileSync(join(dir, 'broken.cjs'), 'const a = 1;\nexports.handler = () => a;\nlet x error = 2;\n');
  // A throw deep in what the entry imports (a config module), not in the entry itself.
  writeFileSync(join(dir, 'config.mjs'), "export const db = JSON.parse('null').db;\n");
  writeFileSync(join(dir, 'uses-config.mjs'), "import './config.mjs';\nexport const handler = () => 'ok';\n");
  // The same in CommonJS under a folder with a space: its frames are plain paths.
  mkdirSync(join(dir, 'my project'));
  writeFileSync(join(dir, 'my project', 'config.cjs'), "exports.db = JSON.parse('null').db;\n");
  writeFileSync(join(dir, 'my project', 'app.cjs'), "require('./config.cjs');\nexports.handler = () => 'ok';\n");
  // Thrown inside a function, in a folder whose name holds parentheses: the throw's line, not its caller's.
  mkdirSync(join(dir, 'proj (copy)'));
  writeFileSync(
    join(dir, 'proj (copy)', 'config.mjs'),
    "function read() {\n  return JSON.parse('null').db;\n}\n\n\nexport const db = read();\n",
  );
  writeFileSync(join(dir, 'proj (copy)', 'app.mjs'), "import './config.mjs';\nexport const handler = () => 'ok';\n");

  it.each([
    ['a directory', join(dir, 'folder'), /^fc-async: The entry .*folder is not a file$/],
    ['a TypeScript syntax error', join(dir, 'broken.ts'), /^fc-async: Loading .*broken\.ts failed: .*broken\.ts:1:\d+/],
    // Node gives an ES module's syntax error no place, and a CommonJS one only at the top of its stack.
    [
      'an ES module syntax error: its line is named',
      join(dir, 'broken.mjs'),
      /^fc-async: Loading .*broken\.mjs failed: Unexpected identifier 'error' \(at .*\/broken\.mjs:3\)$/,
    ],
    [
      'a CommonJS syntax error: its line is named, not the loader',
      join(dir, 'broken.cjs'),
      /^fc-async: Loading .*broken\.cjs failed: Unexpected identifier 'error' \(at .*\/broken\.cjs:3\)$/,
    ],
    [
      'a module it imports throwing while it loads: the place that threw is named',
      join(dir, 'uses-config.mjs'),
      /^fc-async: Loading .*uses-config\.mjs failed: Cannot read properties of null \(reading 'db'\) \(at .*config\.mjs:1:\d+\)$/,
    ],
    [
      'a CommonJS module it requires throwing, in a folder with a space: the whole path is named',
      join(dir, 'my project', 'app.cjs'),
      /failed: Cannot read properties of null \(reading 'db'\) \(at .*\/my project\/config\.cjs:1:\d+\)$/,
    ],
    [
      'a module throwing inside a function, in a folder whose name holds parentheses: the line that threw',
      join(dir, 'proj (copy)', 'app.mjs'),
      /failed: Cannot read properties of null \(reading 'db'\) \(at .*\/proj \(copy\)\/config\.mjs:2:\d+\)$/,
    ],
    [
      'a `handler` export that is not a function',
      join(dir, 'number.mjs'),
      /^fc-async: .*number\.mjs exports no Express, Koa or Fastify app and no FC handler .*handler is a number/,
    ],
    [
      'a Fastify app whose plugin fails to register',
      fixture('fastify-plugin-fails.mjs'),
      /^fc-async: The Fastify app of .* failed to start: the database plugin could not connect$/,
    ],
  ])('%s: exit 1', async (_label, entry, message) => {
    const { code, stderr } = await runCli(['dev', entry, '--port', '0', '--control-port', '0']);
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe('an app that never answers', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      entry: fixture('koa-hang.mjs'),
      name: 'hang',
      timeoutSeconds: 1,
      output: () => {},
      port: 0,
      controlPort: 0,
    });
  });
  afterAll(() => emulator.close({ timeoutMs: 0 }));

  it('a sync call gets 504 FunctionTimeout after the function timeout, and the next call is served', async () => {
    const res = await fetch(`${emulator.triggerUrl}/hang`, { signal: AbortSignal.timeout(15_000) });
    expect(res.status).toBe(504);
    expect(res.headers.get('x-fc-request-id')).toBeTruthy();
    const body = (await res.json()) as { code: string; message: string };
    expect(body).toEqual({ code: 'FunctionTimeout', message: 'hang did not answer within its timeout of 1 s' });
    expect((await fetch(`${emulator.triggerUrl}/ok`)).status).toBe(200);
  });

  it('a sync InvokeFunction of it answers with the timeout as a function error', async () => {
    const res = await invokeSync(emulator.controlUrl, 'hang', '/hang');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-http-status')).toBe('504');
    expect(res.headers.get('x-fc-error-type')).toBe('UnhandledInvocationError');
    expect(await res.json()).toMatchObject({ code: 'FunctionTimeout' });
  });
});
