import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTask } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../src/index.js';
import { runCli, waitFor } from './helpers.js';

// `redactHeaders` / `--redact-header`: headers the emulator keeps out of the async tasks it keeps.
// A custom runtime's own fcAsync({ redactHeaders }) is out of the emulator's sight: the emulator
// plays FC in front of it, takes the call and stores the task before the runtime sees it.

const SECRET = 'k-SECRET-123';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-redact-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A custom runtime answering each request with the `x-api-key` it got, and an s.yaml serving it. */
function customRuntime(dir: string): string {
  writeFileSync(
    join(dir, 'server.mjs'),
    `import { createServer } from 'node:http';
createServer((req, res) => {
  req.resume();
  req.on('end', () => res.setHeader('content-type', 'application/json').end(JSON.stringify({ key: req.headers['x-api-key'] ?? null, other: req.headers['x-other'] ?? null })));
}).listen(Number(process.env.FC_SERVER_PORT), '127.0.0.1');
`,
  );
  const config = join(dir, 's.yaml');
  writeFileSync(
    config,
    `edition: 3.0.0
name: redact
resources:
  cr:
    component: fc3
    props:
      functionName: cr
      runtime: custom.debian10
      code: ./
      timeout: 30
      customRuntimeConfig:
        command: [node, server.mjs]
      triggers:
        - triggerName: http
          triggerType: http
          triggerConfig: { authType: anonymous, methods: [POST] }
`,
  );
  return config;
}

async function start(options: EmulatorOptions): Promise<Emulator> {
  const emulator = await startEmulator({ port: 0, controlPort: 0, output: () => {}, ...options });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return emulator;
}

const getTask = async (emulator: Emulator, id: string) =>
  (await (await fetch(`${emulator.controlUrl}/2023-03-30/functions/cr/async-tasks/${id}`)).text()) as string;

describe('startEmulator({ redactHeaders })', () => {
  it('a custom runtime: the header is neither stored (the sqlite file included), shown by GetAsyncTask, nor replayed', async () => {
    const dir = folder();
    const emulator = await start({
      config: customRuntime(dir),
      store: `sqlite:${join(dir, 'tasks.db')}`,
      redactHeaders: ['X-Api-Key'],
    });
    const accepted = await fetch(`${emulator.triggerUrl}/key`, {
      method: 'POST',
      headers: {
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': 'key1',
        'x-api-key': SECRET,
        'x-other': 'kept',
      },
    });
    expect(accepted.status).toBe(202);
    const text = await waitFor(async () => {
      const body = await getTask(emulator, 'key1');
      return (JSON.parse(body) as AsyncTask).status === 'Succeeded' ? body : undefined;
    });
    const task = JSON.parse(text) as AsyncTask;
    // The attempt the custom runtime got: without the header, the others as sent.
    expect(JSON.parse(task.returnPayload ?? '{}')).toEqual({ key: null, other: 'kept' });
    expect(JSON.parse(task.taskPayload ?? '{}').headers).toMatchObject({ 'x-other': 'kept' });
    expect(text).not.toContain(SECRET);
    await emulator.close({ timeoutMs: 1000 });
    for (const file of readdirSync(dir).filter((f) => f.startsWith('tasks.db'))) {
      expect(readFileSync(join(dir, file)).includes(SECRET)).toBe(false);
    }
  });

  it('an entry exporting an fc-async handler: the names add to its own redactHeaders', async () => {
    const dir = folder();
    const file = join(dir, 'cr.mjs');
    writeFileSync(
      file,
      `import { createFcHandler } from ${JSON.stringify(import.meta.resolve('@fc-async/core'))};
export const handler = createFcHandler((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ key: req.headers['x-api-key'] ?? null, own: req.headers['x-own'] ?? null }));
}, { redactHeaders: ['x-own'] });
`,
    );
    const emulator = await start({ entry: file, name: 'cr', redactHeaders: ['x-api-key'] });
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'own1', 'x-api-key': SECRET };
    const accepted = await fetch(`${emulator.triggerUrl}/`, {
      method: 'POST',
      headers: { ...headers, 'x-own': SECRET },
    });
    expect(accepted.status).toBe(202);
    const text = await waitFor(async () => {
      const body = await getTask(emulator, 'own1');
      return (JSON.parse(body) as AsyncTask).status === 'Succeeded' ? body : undefined;
    });
    expect(JSON.parse((JSON.parse(text) as AsyncTask).returnPayload ?? '{}')).toEqual({ key: null, own: null });
    expect(text).not.toContain(SECRET);
  });

  it('refuses a name that matches no header, naming the option (and the flag on the command line)', async () => {
    await expect(startEmulator({ entry: 'app.ts', redactHeaders: [' x-api-key'] })).rejects.toThrow(
      'Expected `redactHeaders` to be header names',
    );
    await expect(startEmulator({ entry: 'app.ts', redactHeaders: 'x-api-key' as never })).rejects.toThrow(
      'Expected `redactHeaders` to be an array of header names, got `string`',
    );
    const cli = await runCli(['dev', 'app.ts', '--redact-header', 'x-api-key', '--redact-header', 'x api']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('Expected --redact-header to be header names');
    expect(cli.stderr).toContain('"x api"');
  });
});
