import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { runCli, waitFor } from './helpers.js';

// The instance lifecycle hooks of a Node.js function (instanceLifecycleConfig; FC 2.0 `initializer`),
// run as FC runs them: the initializer once the code has loaded and before any invocation, preStop
// when the instance stops, after its tasks have drained.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A temporary project with `files` (name → text); its folder is removed after the test. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-lifecycle-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function serve(dir: string, logged: string[] = []) {
  const emulator = await startEmulator({
    config: join(dir, 's.yaml'),
    port: 0,
    controlPort: 0,
    retryBaseMs: 10,
    output: (line) => logged.push(line),
  });
  let closed = false;
  cleanups.push(() => closed || emulator.close({ timeoutMs: 1000 }));
  return {
    emulator,
    logged,
    close: async (timeoutMs = 5000) => {
      closed = true;
      await emulator.close({ timeoutMs });
    },
  };
}

/** The start's error (the emulator's start must fail). */
async function refused(dir: string, logged: string[] = []) {
  const started = startEmulator({
    config: join(dir, 's.yaml'),
    port: 0,
    controlPort: 0,
    output: (l) => logged.push(l),
  });
  const error = await started.then(
    async (emulator) => {
      await emulator.close();
      return undefined;
    },
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error, 'the start should have failed').toBeDefined();
  return error as { code?: string; message: string };
}

/** An FC 2.0 (`fc` component) s.yaml of one HTTP function `web` of service `video`, with `fields` in its `function`. */
const FC2 = (fields: string) => `services:
  web:
    component: fc
    props:
      service: { name: video }
      function:
        name: web
        codeUri: ./
        handler: index.handler
        runtime: nodejs18
${fields}      triggers: [{ name: http, type: http }]
`;

const FC3 = (hooks: string) => `edition: 3.0.0
resources:
  api:
    component: fc3
    props:
      functionName: api
      runtime: nodejs20
      code: ./
      handler: index.handler
      timeout: 10
${hooks}      triggers:
        - triggerName: http
          triggerType: http
`;

describe("a Node.js function's initializer", () => {
  it('runs once, before the first invocation, in the handler module; preStop runs on shutdown after the tasks drained', async () => {
    const dir = project({
      'index.mjs': `import { writeFileSync } from 'node:fs';
let db;
let initializations = 0;
let handled = 0;
export const initialize = async (context) => {
  initializations++;
  await new Promise((r) => setTimeout(r, 50));
  db = { requestId: context.requestId, fn: context.function.name, memory: context.function.memory };
  context.logger.info('connected');
};
export const preStop = (context, callback) => {
  writeFileSync(new URL('stopped.json', import.meta.url), JSON.stringify({ handled, fn: context.function.name }));
  callback(null, '');
};
export const handler = async (event) => {
  if (!db) throw new Error('the initializer has not run');
  const { rawPath } = JSON.parse(event.toString());
  if (rawPath === '/slow') await new Promise((r) => setTimeout(r, 300));
  handled++;
  return { statusCode: 200, body: JSON.stringify({ db, initializations, handled }) };
};
`,
      's.yaml': FC3(`      instanceLifecycleConfig:
        initializer: { handler: index.initialize, timeout: 5 }
        preStop: { handler: index.preStop, timeout: 5 }
`),
    });
    const { emulator, logged, close } = await serve(dir);
    const first = (await (await fetch(`${emulator.triggerUrl}/a`)).json()) as Record<string, unknown>;
    expect(first).toMatchObject({ db: { fn: 'api', memory: 128 }, initializations: 1, handled: 1 });
    // The initializer's own request id, not the invocation's.
    expect((first.db as { requestId: string }).requestId).toMatch(/^1-[0-9a-f]{8}-/);
    const second = (await (await fetch(`${emulator.triggerUrl}/b`)).json()) as Record<string, unknown>;
    expect(second).toMatchObject({ initializations: 1, handled: 2 });
    expect(second.db).toEqual(first.db);
    expect(logged.some((l) => l.includes('connected'))).toBe(true);
    expect(logged.some((l) => l.includes('api: initializer index.initialize done'))).toBe(true);

    // An accepted task still running at shutdown finishes before preStop.
    const accepted = await fetch(`${emulator.triggerUrl}/slow`, { headers: { 'x-fc-invocation-type': 'Async' } });
    expect(accepted.status).toBe(202);
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(dir, 'stopped.json'))).toBe(false);
    await close();
    expect(JSON.parse(readFileSync(join(dir, 'stopped.json'), 'utf8'))).toEqual({ handled: 3, fn: 'api' });
    expect(logged.some((l) => l.includes('api: preStop index.preStop done'))).toBe(true);
  });

  it("FC 2.0: initializer and initializationTimeout, in a file of its own that shares a module with the handler's", async () => {
    const dir = project({
      'state.mjs': 'export const state = { pool: null };\n',
      'init.mjs': `import { state } from './state.mjs';
export function initializer(context, callback) {
  setTimeout(() => { state.pool = 'pool of ' + context.service.name; callback(null, ''); }, 20);
}
`,
      'index.mjs': `import { state } from './state.mjs';
export const handler = (req, resp) => { resp.send(String(state.pool)); };
`,
      's.yaml': FC2('        initializer: init.initializer\n        initializationTimeout: 5\n'),
    });
    const { emulator } = await serve(dir);
    const res = await fetch(`${emulator.triggerUrl}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('pool of video');
  });

  it('that throws fails the start, naming the function, the hook, the error and where it was thrown', async () => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';
export const initialize = async () => {
  throw new Error('ECONNREFUSED 127.0.0.1:5432');
};
`,
      's.yaml': FC3(`      instanceLifecycleConfig:
        initializer: { handler: index.initialize }
`),
    });
    const error = await refused(dir);
    expect(error.code).toBe('InitializerFailed');
    expect(error.message).toBe(
      `api: its initializer index.initialize failed: ECONNREFUSED 127.0.0.1:5432 (at ${join(dir, 'index.mjs')}:3:9)`,
    );

    // A thrown value with no text of its own (String() of it throws) is still named, not a TypeError.
    const odd = project({
      'index.mjs': `export const handler = async () => 'ok';
export const initialize = async () => {
  throw Object.create(null);
};
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize }\n'),
    });
    const oddError = await refused(odd);
    expect(oddError.code).toBe('InitializerFailed');
    expect(oddError.message).toBe('api: its initializer index.initialize failed: [object Object]');
  });

  it.each([
    ['throws null', '() => { throw null; }', 'The function threw null'],
    ['rejects with 0', 'async () => { throw 0; }', 'The function rejected with 0'],
    ["rejects with ''", "() => Promise.reject('')", "The function rejected with ''"],
  ])('that %s fails the start, as any thrown value does', async (_what, body, said) => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';\nexport const initialize = ${body};\n`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize }\n'),
    });
    expect(await refused(dir)).toMatchObject({
      code: 'InitializerFailed',
      message: `api: its initializer index.initialize failed: ${said}`,
    });
  });

  it('that calls back an error, or never finishes, fails the start (its timeout, default 3 s)', async () => {
    const called = project({
      'index.cjs': `exports.handler = async () => 'ok';
exports.initialize = (context, callback) => callback(new Error('no config for ' + context.function.name));
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize }\n'),
    });
    const first = await refused(called);
    expect(first).toMatchObject({ code: 'InitializerFailed' });
    expect(first.message).toMatch(/^api: its initializer index\.initialize failed: no config for api/);

    const hung = project({
      'index.mjs': `export const handler = async () => 'ok';
export const initialize = () => new Promise(() => {});
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize, timeout: 1 }\n'),
    });
    const started = Date.now();
    const second = await refused(hung);
    expect(second).toMatchObject({
      code: 'InitializerFailed',
      message: 'api: its initializer index.initialize did not finish within its timeout (1 s)',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('that calls process.exit() ends `fc-async dev` with exit code 1, its logged lines written, not lost', async () => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';
export const initialize = async (context) => {
  context.logger.info('no DATABASE_URL: giving up');
  process.exit(0);
};
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize }\n'),
    });
    const run = await runCli(['dev', '--config', join(dir, 's.yaml'), '--port', '0', '--control-port', '0']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`process.exit(0) was called at ${join(dir, 'index.mjs')}:4:11`);
    // The initializer's own line, with its function and request id, as every context.logger line.
    expect(run.stdout).toMatch(/INFO {2}no DATABASE_URL: giving up function=api requestId=1-[0-9a-f]{8}-/);
  });

  it('still running after 5 s is said once, while the ports wait for it', async () => {
    const dir = project({
      'index.mjs': `export const handler = async () => ({ statusCode: 200, body: 'ok' });
export const initialize = () => new Promise((resolve) => { globalThis.releaseLifecycleInit = resolve; });
`,
      's.yaml': FC3(
        '      instanceLifecycleConfig:\n        initializer: { handler: index.initialize, timeout: 60 }\n',
      ),
    });
    const logged: string[] = [];
    const starting = serve(dir, logged);
    const said =
      "api: its initializer index.initialize still runs after 5 s (its timeout: 60 s); the emulator's ports open once every initializer has finished";
    await waitFor(() => logged.find((l) => l.includes(said)));
    (globalThis as { releaseLifecycleInit?: () => void }).releaseLifecycleInit?.();
    const { emulator } = await starting;
    expect(await (await fetch(`${emulator.triggerUrl}/`)).text()).toBe('ok');
    expect(logged.filter((l) => l.includes('still runs')).length).toBe(1);
  });

  it('that logs, then throws, has its lines written before `fc-async dev` exits 1 with the failure', async () => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';
export const initialize = async (context) => {
  context.logger.info('connecting to 10.0.0.5:5432');
  throw new Error('ECONNREFUSED');
};
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize }\n'),
    });
    const run = await runCli(['dev', '--config', join(dir, 's.yaml'), '--port', '0', '--control-port', '0']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('fc-async: api: its initializer index.initialize failed: ECONNREFUSED');
    expect(run.stdout).toMatch(/INFO {2}connecting to 10\.0\.0\.5:5432 function=api requestId=1-/);
  });

  it('with a timeout past what a timer holds (about 24.8 days) runs to its end, not timed out at once', async () => {
    const dir = project({
      'index.mjs': `let ready = false;
export const initialize = async () => {
  await new Promise((r) => setTimeout(r, 50));
  ready = true;
};
export const handler = async () => ({ statusCode: 200, body: String(ready) });
`,
      's.yaml': FC3(
        '      instanceLifecycleConfig:\n        initializer: { handler: index.initialize, timeout: 3000000 }\n',
      ),
    });
    const { emulator } = await serve(dir);
    expect(await (await fetch(`${emulator.triggerUrl}/`)).text()).toBe('true');
  });

  it('that the module does not export, or a file that is not there, is refused before anything runs', async () => {
    const missingExport = project({
      'index.mjs': `export const handler = async () => 'ok';\nexport const initialise = 1;\n`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize }\n'),
    });
    expect(await refused(missingExport)).toMatchObject({
      code: 'EntryNotServable',
      message: `${join(missingExport, 'index.mjs')}: the s.yaml names index.initialize as the function's initializer, but the module exports no \`initialize\``,
    });
    const notAFunction = project({
      'index.mjs': `export const handler = async () => 'ok';\nexport const preStop = 'later';\n`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        preStop: { handler: index.preStop }\n'),
    });
    expect((await refused(notAFunction)).message).toMatch(/its `preStop` is a string, not a function$/);
    const noFile = project({
      'index.mjs': `export const handler = async () => 'ok';\n`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        initializer: { handler: setup.initialize }\n'),
    });
    const error = await refused(noFile);
    expect(error.code).toBe('InvalidConfig');
    expect(error.message).toContain(
      'resources.api.props.instanceLifecycleConfig.initializer.handler setup.initialize: none of setup.js,',
    );
  });

  it("whose start then fails (a Fastify app's plugin) runs its preStop, so that what it opened is undone", async () => {
    const dir = project({
      'index.mjs': `import { writeFileSync } from 'node:fs';
import Fastify from ${JSON.stringify(import.meta.resolve('fastify'))};
let timer;
export const app = Fastify();
app.register(async () => { throw new Error('plugin failed'); });
export const initialize = async () => { timer = setInterval(() => {}, 1000); };
export const preStop = async () => {
  clearInterval(timer);
  writeFileSync(new URL('stopped', import.meta.url), 'yes');
};
`,
      's.yaml': FC3(`      instanceLifecycleConfig:
        initializer: { handler: index.initialize }
        preStop: { handler: index.preStop }
`).replace('handler: index.handler', 'handler: index.app'),
    });
    const error = await refused(dir);
    expect(error).toMatchObject({ code: 'EntryLoadFailed' });
    expect(error.message).toContain('plugin failed');
    // Its interval, left running, would keep `startEmulator()`'s process alive after the refusal.
    expect(readFileSync(join(dir, 'stopped'), 'utf8')).toBe('yes');
  });
});

describe("a Node.js function's lifecycle config", () => {
  it('with a misspelt key, which runs no hook, says so at start with the key meant', async () => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';\nexport const initialize = async () => {};\n`,
      's.yaml': FC3(`      instanceLifecycleConfig:
        initialiser: { handler: index.initialize }
        preStop: { handler: index.initialize, timout: 5 }
`),
    });
    const { logged } = await serve(dir);
    const where = 'resources.api.props.instanceLifecycleConfig';
    expect(logged.join('')).toContain(`${where}: unknown key initialiser (ignored); did you mean initializer?`);
    expect(logged.join('')).toContain(`${where}.preStop: unknown key timout (ignored); did you mean timeout?`);
  });

  it.each([
    [
      'a handler that is not text',
      FC3('      instanceLifecycleConfig:\n        initializer: { handler: 123 }\n'),
      'resources.api.props.instanceLifecycleConfig.initializer.handler must look like file.export (index.initializer), got 123',
    ],
    [
      'an instanceLifecycleConfig that is a list',
      FC3('      instanceLifecycleConfig: []\n'),
      'resources.api.props.instanceLifecycleConfig must be a mapping (initializer, preStop), got []',
    ],
    [
      'a hook that is a name, not a mapping',
      FC3('      instanceLifecycleConfig:\n        preStop: index.preStop\n'),
      'resources.api.props.instanceLifecycleConfig.preStop must be a mapping (handler, timeout), got "index.preStop"',
    ],
    [
      'a timeout that is not a whole number of seconds',
      FC3('      instanceLifecycleConfig:\n        initializer: { handler: index.initialize, timeout: 1.5 }\n'),
      "resources.api.props.instanceLifecycleConfig.initializer.timeout must be a whole number of seconds (FC's hook timeout is an integer), got 1.5",
    ],
    [
      'a timeout of .inf',
      FC3('      instanceLifecycleConfig:\n        preStop: { handler: index.preStop, timeout: .inf }\n'),
      "resources.api.props.instanceLifecycleConfig.preStop.timeout must be a whole number of seconds (FC's hook timeout is an integer), got Infinity",
    ],
    [
      "FC 2.0's initializer key in an fc3 resource, which FC 3.0 would not run",
      FC3('      initializer: index.initialize\n'),
      "resources.api.props.initializer is FC 2.0's `fc` component key: the fc3 component names the hook instanceLifecycleConfig.initializer (handler, timeout)",
    ],
    [
      "FC 3.0's instanceLifecycleConfig.initializer in an fc function, which FC 2.0 would not run",
      FC2('        instanceLifecycleConfig:\n          initializer: { handler: index.initialize, timeout: 5 }\n'),
      "services.web.props.function.instanceLifecycleConfig.initializer is FC 3.0's `fc3` component key: the fc component names the hook initializer (file.export), with initializationTimeout",
    ],
    [
      'an FC 2.0 initializer that is not text',
      FC2('        initializer: 123\n'),
      'services.web.props.function.initializer must look like file.export (index.initializer), got 123',
    ],
  ])('refuses %s, naming the s.yaml and the field', async (_what, yaml, problem) => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';
export const initialize = async () => {};
export const preStop = async () => {};
`,
      's.yaml': yaml,
    });
    const error = await refused(dir);
    expect(error).toMatchObject({ code: 'InvalidConfig' });
    expect(error.message).toBe(`${join(dir, 's.yaml')}: ${problem}`);
  });

  it("refuses FC 2.0's initializer key in an fc3 custom runtime too, whose POST /initialize FC 3.0 would not send", async () => {
    const dir = project({
      'server.mjs': `import { createServer } from 'node:http';
createServer((req, res) => res.end('ok')).listen(Number(process.env.FC_SERVER_PORT));
`,
      's.yaml': FC3('      initializer: "true"\n      initializationTimeout: 5\n')
        .replace('runtime: nodejs20', 'runtime: custom.debian12')
        .replace(
          'handler: index.handler',
          'handler: index.handler\n      customRuntimeConfig: { command: [node, server.mjs] }',
        ),
    });
    const error = await refused(dir);
    expect(error).toMatchObject({ code: 'InvalidConfig' });
    expect(error.message).toBe(
      `${join(dir, 's.yaml')}: resources.api.props.initializer is FC 2.0's \`fc\` component key: the fc3 component names the hook instanceLifecycleConfig.initializer (handler, timeout)`,
    );
  });
});

describe("a Node.js function's preStop", () => {
  it('that throws or outlasts its timeout is logged, and the shutdown goes on', async () => {
    const dir = project({
      'index.mjs': `export const handler = async () => 'ok';
export const preStop = async () => { throw new Error('flush failed'); };
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        preStop: { handler: index.preStop }\n'),
    });
    const { logged, close } = await serve(dir);
    await close();
    await waitFor(() => logged.find((l) => l.includes('api: preStop index.preStop failed: flush failed')));

    const hung = project({
      'index.mjs': `export const handler = async () => 'ok';
export const preStop = () => new Promise(() => {});
`,
      's.yaml': FC3('      instanceLifecycleConfig:\n        preStop: { handler: index.preStop, timeout: 1 }\n'),
    });
    const second = await serve(hung);
    const started = Date.now();
    await second.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(
      second.logged.some((l) => l.includes('api: preStop index.preStop did not finish within its timeout (1 s)')),
    ).toBe(true);
  });
});
