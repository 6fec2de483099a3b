import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { freePort } from '../src/ports.js';
import { fixture, runCli, startCli, waitFor } from './helpers.js';

// What a hand-made mutation audit of the emulator's function layer (entries, routing, invoke,
// local destinations, watch) found that no test held.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-mut21-emulator-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An emulator on `entry` (or `config`), its log lines kept. */
async function serve(options: { entry?: string; config?: string; outDir?: string; logFormat?: 'json' | 'text' }) {
  const logged: string[] = [];
  const emulator = await startEmulator({
    ...options,
    port: 0,
    controlPort: 0,
    output: (text) => logged.push(...text.split('\n').filter(Boolean)),
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return { emulator, logged };
}

/** A file of a plain FC 3.0 handler answering `ok`. */
async function plainEntry(): Promise<string> {
  const file = join(tempDir(), 'index.mjs');
  writeFileSync(file, `export const handler = ${answering('ok')};\n`);
  return file;
}

/** A plain FC 3.0 handler answering `text`. */
const answering = (text: string) => `async () => ({ statusCode: 200, body: ${JSON.stringify(text)} })`;

describe('the export an entry is served by', () => {
  it('is `handler` before `default` and `app`, then `default` before `app`, as FC calls index.handler', async () => {
    const dir = tempDir();
    const all = join(dir, 'all.mjs');
    writeFileSync(
      all,
      `export const app = ${answering('app')};\nexport default ${answering('default')};\nexport const handler = ${answering('handler')};\n`,
    );
    const noHandler = join(dir, 'no-handler.mjs');
    writeFileSync(noHandler, `export const app = ${answering('app')};\nexport default ${answering('default')};\n`);
    for (const [entry, served] of [
      [all, 'handler'],
      [noHandler, 'default'],
    ] as const) {
      const { emulator } = await serve({ entry });
      const res = await fetch(`${emulator.triggerUrl}/`);
      expect(await res.text()).toBe(served);
    }
  });

  it('of a .cjs file in a "type": "module" package is read from its module.exports, as Node loads it as CommonJS', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const entry = join(dir, 'index.cjs');
    // module.exports set from a variable: Node's import() finds no named export in it, only `default`.
    writeFileSync(
      entry,
      `const api = {};\napi.handler = ${answering('from module.exports')};\nmodule.exports = api;\n`,
    );
    // In plain Node (the CLI), not vitest's module runner, which finds the named exports itself.
    const run = await startCli([entry]);
    cleanups.push(() => run.stop());
    const res = await fetch(`${run.trigger}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from module.exports');
  });
});

describe('an entry whose top-level await never settles, after another entry loaded', () => {
  it('is the only one named: the entry that loaded is not', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fine.mjs'), `export const handler = ${answering('ok')};\n`);
    writeFileSync(
      join(dir, 'stuck.mjs'),
      `await new Promise(() => {});\nexport const handler = ${answering('never')};\n`,
    );
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: stuck
resources:
  fine:
    component: fc3
    props: { functionName: fine, code: ./, handler: fine.handler, runtime: nodejs20 }
  stuck:
    component: fc3
    props: { functionName: stuck, code: ./, handler: stuck.handler, runtime: nodejs20 }
`,
    );
    const { code, stderr } = await runCli(
      ['dev', '--config', join(dir, 's.yaml'), '--port', '0', '--control-port', '0'],
      {
        cwd: dir,
      },
    );
    expect(stderr).toContain(
      `fc-async: ${join(dir, 'stuck.mjs')}: its loading never finished: a top-level await waits for a promise that nothing settles\n`,
    );
    expect(stderr).not.toContain('fine.mjs');
    expect(code).toBe(1);
  });
});

describe('a task that expires while it waits', () => {
  it('is logged once, as Expired with no attempt made', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'index.mjs'), `export const handler = ${answering('ran')};\n`);
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: aged
resources:
  aged:
    component: fc3
    props:
      functionName: aged
      code: ./
      handler: index.handler
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        maxAsyncEventAgeInSeconds: 1
`,
    );
    const { emulator, logged } = await serve({ config: join(dir, 's.yaml'), logFormat: 'json' });
    const res = await fetch(`${emulator.triggerUrl}/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'expires', 'x-fc-async-delay': '2' },
    });
    expect(res.status).toBe(202);
    const attempts = () =>
      logged.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.kind === 'attempt');
    const line = await waitFor(() => attempts().find((l) => l.taskId === 'expires'));
    expect(line).toMatchObject({ function: 'aged', taskId: 'expires', status: 'Expired', attempt: 0 });
    const task = await fetch(`${emulator.controlUrl}/2023-03-30/functions/aged/async-tasks/expires`);
    expect(((await task.json()) as { status: string }).status).toBe('Expired');
    expect(attempts().filter((l) => l.taskId === 'expires')).toHaveLength(1);
  });
});

describe('fc-async dev stopped with SIGTERM', () => {
  it('exits 0 without blaming a function for calling process.exit()', async () => {
    const run = await startCli([fixture('echo-handler.mjs')]);
    const closed = new Promise((resolve) => run.proc.once('close', resolve));
    expect(await run.stop('SIGTERM')).toBe(0);
    await closed; // its output read to the end
    const said = [...run.lines.map((l) => JSON.stringify(l)), ...run.stderr].join('\n');
    expect(said).toContain('SIGTERM: finishing running tasks');
    expect(said).not.toContain('process.exit()');
  });
});

describe('a function that calls process.exit() under --store sqlite:PATH', () => {
  it('is told with its tasks kept in the store for the next start, not lost', async () => {
    const dir = tempDir();
    const entry = join(dir, 'app.mjs');
    writeFileSync(
      entry,
      "export const handler = async () => {\n  setTimeout(() => process.exit(3), 0);\n  return 'bye';\n};\n",
    );
    const run = await startCli([entry, '--store', `sqlite:${join(dir, 'tasks.db')}`]);
    cleanups.push(() => run.stop());
    expect((await fetch(run.trigger)).status).toBe(200);
    expect(await run.exited).toBe(3);
    const line = run.stderr
      .join('')
      .split('\n')
      .find((l) => l.includes('process.exit()'));
    expect(line).toContain('the process exits (code 3) while the emulator serves');
    expect(line).toContain('tasks not finished stay in the store for the next start');
  });
});

describe('an s.yaml function without a timeout', () => {
  it("has FC's default of 60 s, which its context tells", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'index.mjs'),
      'export const handler = async (event, context) => ({ statusCode: 200, body: String(context.function.timeout) });\n',
    );
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: untimed
resources:
  untimed:
    component: fc3
    props:
      functionName: untimed
      code: ./
      handler: index.handler
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
`,
    );
    const { emulator } = await serve({ config: join(dir, 's.yaml') });
    expect(await (await fetch(`${emulator.triggerUrl}/`)).text()).toBe('60');
  });
});

describe('a start that fails', () => {
  it('on a control port in use frees the trigger port it had opened', async () => {
    const port = await freePort();
    const { emulator: holder } = await serve({ entry: await plainEntry() });
    const controlPort = Number(new URL(holder.controlUrl).port);
    await expect(
      startEmulator({ entry: await plainEntry(), port, controlPort, output: () => {} }),
    ).rejects.toMatchObject({ code: 'ListenFailed' });
    // The trigger port is free again: another start takes it.
    const again = await startEmulator({ entry: await plainEntry(), port, controlPort: 0, output: () => {} });
    cleanups.push(() => again.close({ timeoutMs: 1000 }));
    expect(new URL(again.triggerUrl).port).toBe(String(port));
  });

  it("at a later function's entry puts back the variables set for the functions loaded before it", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'index.mjs'), `export const handler = ${answering('ok')};\n`);
    writeFileSync(join(dir, 'broken.mjs'), "throw new Error('the database is down');\n");
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: half
resources:
  loads:
    component: fc3
    props:
      functionName: loads
      code: ./
      handler: index.handler
      runtime: nodejs20
      environmentVariables: { MUT21_LOADED_VAR: set }
  broken:
    component: fc3
    props: { functionName: broken, code: ./, handler: broken.handler, runtime: nodejs20 }
`,
    );
    delete process.env.MUT21_LOADED_VAR;
    const before = process.env.FC_FUNCTION_NAME;
    await expect(serve({ config: join(dir, 's.yaml') })).rejects.toMatchObject({ code: 'EntryLoadFailed' });
    expect(process.env.MUT21_LOADED_VAR).toBeUndefined();
    expect(process.env.FC_FUNCTION_NAME).toBe(before);
  });
});

describe('--concurrency', () => {
  it('bounds the async attempts of a function running at once (here 1: the tasks run one after the other)', async () => {
    const dir = tempDir();
    const entry = join(dir, 'index.mjs');
    // Each attempt tells the most attempts it has seen running at once, itself included.
    writeFileSync(
      entry,
      `let running = 0;
export let most = 0;
export const handler = async () => {
  running++;
  most = Math.max(most, running);
  await new Promise((resolve) => setTimeout(resolve, 300));
  running--;
  return { statusCode: 200, body: String(most) };
};
`,
    );
    const logged: string[] = [];
    const emulator = await startEmulator({
      entry,
      port: 0,
      controlPort: 0,
      concurrency: 1,
      logFormat: 'json',
      output: (text) => logged.push(...text.split('\n').filter(Boolean)),
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const accept = async (id: string) => {
      const res = await fetch(`${emulator.triggerUrl}/`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': id },
      });
      expect(res.status).toBe(202);
    };
    await Promise.all([accept('first'), accept('second'), accept('third')]);
    const payload = (id: string) =>
      waitFor(async () => {
        const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/index/async-tasks/${id}`);
        const t = (await res.json()) as { status?: string; returnPayload?: string };
        return t.status === 'Succeeded' ? Buffer.from(t.returnPayload ?? '', 'base64').toString() : undefined;
      });
    expect([await payload('first'), await payload('second'), await payload('third')]).toEqual(['1', '1', '1']);
  });
});

describe('a destination function whose queue is full', () => {
  it('is called again, as FC retries a 429, and the record counts as not delivered once the retries are spent', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'fns.mjs'),
      `export const upload = async () => ({ statusCode: 200, body: 'stored' });\nexport const dest = async () => 'got it';\n`,
    );
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: full
resources:
  upload:
    component: fc3
    props:
      functionName: upload
      code: ./
      handler: fns.upload
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/dest' }
  dest:
    component: fc3
    props: { functionName: dest, code: ./, handler: fns.dest, runtime: nodejs20 }
`,
    );
    const logged: string[] = [];
    const emulator = await startEmulator({
      config: join(dir, 's.yaml'),
      port: 0,
      controlPort: 0,
      maxQueuedTasks: 1,
      logFormat: 'json',
      output: (text) => logged.push(...text.split('\n').filter(Boolean)),
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    // A task delayed for long holds the one place of dest's queue.
    const held = await fetch(`${emulator.controlUrl}/2023-03-30/functions/dest/invocations`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '600' },
      body: '{}',
    });
    expect(held.status).toBe(202);
    const res = await fetch(`${emulator.triggerUrl}/upload/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'full_dest' },
    });
    expect(res.status).toBe(202);
    const task = await waitFor(async () => {
      const t = (await (
        await fetch(`${emulator.controlUrl}/2023-03-30/functions/upload/async-tasks/full_dest`)
      ).json()) as { status?: string; destinationStatus?: string };
      return t.destinationStatus ? t : undefined;
    });
    expect(task).toMatchObject({ status: 'Succeeded', destinationStatus: 'Failed' });
    // Log lines are written in batches (every 10 ms): the task's record can be read before its line.
    const delivery = await waitFor(() =>
      logged
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((l) => l.kind === 'delivery' && l.taskId === 'full_dest'),
    );
    // The first call and FC's 3 retries, each refused 429.
    expect(delivery?.destinations).toEqual([{ label: 'fc:dest', status: 'Failed', attempts: 4 }]);
  });
});

/** The first line of `file` once it is there. */
const firstLine = (file: string) =>
  waitFor(() => {
    try {
      return readFileSync(file, 'utf8').split('\n')[0] || undefined;
    } catch {
      return undefined;
    }
  });

describe('an EventBridge onFailure destination, not reachable locally', () => {
  it('gets the record of a failed task as a CloudEvent typed fc:AsyncInvoke:failed', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fail.mjs'), "export const handler = async () => { throw new Error('no luck'); };\n");
    writeFileSync(
      join(dir, 's.yaml'),
      `resources:
  jobs:
    component: fc3
    props:
      functionName: jobs
      code: ./
      handler: fail.handler
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
        destinationConfig:
          onFailure: { destination: 'acs:eventbridge:cn-hangzhou:123:eventbus/default' }
`,
    );
    const { emulator } = await serve({ config: join(dir, 's.yaml'), outDir: join(dir, 'out') });
    const res = await fetch(emulator.triggerUrl, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(res.status).toBe(202);
    const event = JSON.parse(await firstLine(join(dir, 'out', 'jobs.onFailure.jsonl')));
    expect(event).toMatchObject({
      type: 'fc:AsyncInvoke:failed',
      id: res.headers.get('x-fc-request-id'),
      data: { requestContext: { condition: 'UnhandledInvocationError' } },
    });
  });
});

describe('an FC 2.0 destination ARN in an FC 3.0 s.yaml', () => {
  it('invokes the function of that name (an FC 3.0 function has no service to tell apart)', async () => {
    const dir = tempDir();
    const received = join(dir, 'received.jsonl');
    writeFileSync(
      join(dir, 'fns.mjs'),
      `import { appendFileSync } from 'node:fs';
export const upload = async () => ({ statusCode: 200, body: 'stored' });
export const dest = async (event) => { appendFileSync(${JSON.stringify(received)}, event.toString('utf8') + '\\n'); };
`,
    );
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: fc2arn
resources:
  upload:
    component: fc3
    props:
      functionName: upload
      code: ./
      handler: fns.upload
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:services/media.LATEST/functions/dest' }
  dest:
    component: fc3
    props: { functionName: dest, code: ./, handler: fns.dest, runtime: nodejs20 }
`,
    );
    const { emulator, logged } = await serve({ config: join(dir, 's.yaml'), outDir: join(dir, 'out') });
    const res = await fetch(`${emulator.triggerUrl}/upload/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
    });
    expect(res.status).toBe(202);
    const record = JSON.parse(await firstLine(received)) as { requestContext: { requestId: string } };
    expect(record.requestContext.requestId).toBe(res.headers.get('x-fc-request-id'));
    expect(logged.join('\n')).not.toContain('records are appended');
  });
});

describe('a request on a kept-alive connection while the emulator shuts down', () => {
  it('is answered 503 ServiceUnavailable with retry-after, not run', async () => {
    const dir = tempDir();
    const entry = join(dir, 'index.mjs');
    // The first call waits until the test lets it go; every call counts itself.
    writeFileSync(
      entry,
      `export const handler = async () => {
  globalThis.mut21Calls = (globalThis.mut21Calls ?? 0) + 1;
  await new Promise((resolve) => { globalThis.mut21Release = resolve; });
  return { statusCode: 200, body: 'ran' };
};
`,
    );
    const g = globalThis as { mut21Calls?: number; mut21Release?: () => void };
    delete g.mut21Calls;
    delete g.mut21Release;
    const emulator = await startEmulator({ entry, port: 0, controlPort: 0, output: () => {} });
    const { hostname, port } = new URL(emulator.triggerUrl);
    const socket = connect(Number(port), hostname);
    let answers = '';
    socket.on('data', (chunk: Buffer) => {
      answers += chunk.toString('latin1');
    });
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    const release = await waitFor(() => g.mut21Release);
    const closed = emulator.close({ timeoutMs: 5000 });
    // Pipelined on the same connection: Node hands it over once the first is answered.
    socket.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
    release();
    await closed;
    await ended;
    const [first, second] = answers.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toMatch(/retry-after: 1\r\n/i);
    expect(second).toContain('"code":"ServiceUnavailable"');
    expect(g.mut21Calls).toBe(1);
  });
});
