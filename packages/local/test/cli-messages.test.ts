import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePort } from '../src/ports.js';
import { fixture, PKG, runCli, spawnCli, startCli, waitFor } from './helpers.js';

// The CLI's own words, as a new user's walkthrough met them: flags rather than the option names of
// startEmulator(), one line per refusal, and no word blaming the app for an exit of the emulator's.

const ENTRY = fixture('echo-handler.mjs');

/** A folder with an s.yaml serving one fc3 function `api`. */
function yamlProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
  writeFileSync(join(dir, 'index.mjs'), 'export const handler = async () => ({ statusCode: 200, body: "ok" });\n');
  writeFileSync(
    join(dir, 's.yaml'),
    'resources:\n  api:\n    component: fc3\n    props:\n      region: cn-hangzhou\n      functionName: api\n' +
      '      runtime: nodejs20\n      code: ./\n      handler: index.handler\n' +
      '      triggers:\n        - triggerName: http\n          triggerType: http\n',
  );
  return dir;
}

describe('fc-async dev names its flags in its refusals, on one line', () => {
  it.each([
    ['--account-id abc', ['--account-id', 'abc'], 'Expected --account-id to be an account id of digits, got `abc`'],
    ['--control-host ""', ['--control-host', ''], 'Expected --control-host to be a non-empty string, got ``'],
    ['--out-dir ""', ['--out-dir', ''], 'Expected --out-dir to be a non-empty string, got ``'],
    ['an entry and --config', ['--config', 's.yaml'], 'Pass either an entry or --config (s.yaml), not both'],
    ['a mistyped flag', ['--prot', '9100'], "unknown option '--prot'; did you mean --port? (see fc-async dev --help)"],
  ])('%s', async (_label, args, message) => {
    const { code, stderr } = await runCli(['dev', ENTRY, ...args]);
    expect(code).toBe(1);
    expect(stderr).toBe(`fc-async: ${message}\n`);
  });

  it('names the HTTP trigger as what holds the port when --port and --control-port are the same', async () => {
    // "in use" alone sent the user looking for another program on that port.
    const port = String(await freePort('127.0.0.1'));
    const { code, stderr } = await runCli(['dev', ENTRY, '--port', port, '--control-port', port]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `fc-async: Port ${port} on 127.0.0.1 is taken by the HTTP trigger (--port ${port}): choose another with --control-port (listen EADDRINUSE: address already in use 127.0.0.1:${port})\n`,
    );
  });

  it('says a port in use by another program is in use', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => void holder.close());
    const port = String((holder.address() as AddressInfo).port);
    for (const flag of ['--port', '--control-port']) {
      const { code, stderr } = await runCli(['dev', ENTRY, '--port', '0', '--control-port', '0', flag, port]);
      expect(code).toBe(1);
      expect(stderr).toMatch(
        new RegExp(
          `^fc-async: Port ${port} on 127\\.0\\.0\\.1 is in use: choose another with ${flag} \\(listen EADDRINUSE[^\\n]*\\)\\n$`,
        ),
      );
    }
  });

  it('says the limit of a --name too long', async () => {
    const { code, stderr } = await runCli(['dev', ENTRY, '--name', 'a'.repeat(70)]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^fc-async: Expected --name to be a function name \(1 to 64 letters.*\(70 characters\)`\n$/);
  });

  it('points an s.yaml given as the entry at --config', async () => {
    const { code, stderr } = await runCli(['dev', 's.yaml'], { cwd: yamlProject() });
    expect(code).toBe(1);
    expect(stderr).toBe(
      'fc-async: s.yaml is a YAML file, not a module to serve: serve an s.yaml with --config s.yaml\n',
    );
  });

  it('quotes a path with spaces in the --config it suggests, so that it pastes into a shell', async () => {
    const dir = yamlProject();
    const { code, stderr } = await runCli(['dev', "my app's (v2)/s.yaml"], { cwd: dir });
    expect(code).toBe(1);
    expect(stderr).toBe(
      "fc-async: my app's (v2)/s.yaml is a YAML file, not a module to serve: serve an s.yaml with --config 'my app'\\''s (v2)/s.yaml'\n",
    );
  });

  it.each([
    [
      ['--store', 'sqlite:~/tasks.db'],
      /^fc-async: Expected `--store` to be `sqlite:PATH` with a PATH not starting with `~` .*write sqlite:\$HOME\/\.\.\.\), got `sqlite:~\/tasks\.db`\n$/,
    ],
    [
      ['--out-dir', '~/records'],
      /^fc-async: Expected --out-dir to be a path not starting with `~` .*write \$HOME\/\.\.\.\), got `~\/records`\n$/,
    ],
    [
      ['--config', '~/s.yaml'],
      /^fc-async: Expected --config to be a path not starting with `~` .*write \$HOME\/\.\.\.\), got `~\/s\.yaml`\n$/,
    ],
  ])('refuses a path starting with ~, which no shell expanded: %s', async (args, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
    const entry = args[0] === '--config' ? [] : [ENTRY];
    for (const watch of [[], ['--watch']]) {
      const { code, stderr } = await runCli(
        ['dev', ...entry, ...args, ...watch, '--port', '0', '--control-port', '0'],
        {
          cwd: dir,
        },
      );
      expect(code).toBe(1);
      expect(stderr).toMatch(message);
    }
    expect(existsSync(join(dir, '~'))).toBe(false);
  });
});

describe('an entry that fails to load', () => {
  it('is named by its file, not by the URL it was imported by (its query made an instance of its own)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
    const file = join(dir, 'app.mjs');
    // What Node says of a JSON entry without an import attribute, naming the module's URL.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the module's own template string
    writeFileSync(file, 'throw new Error(`Module "${import.meta.url}" needs an import attribute`);\n');
    const { code, stderr } = await runCli(['dev', file, '--port', '0', '--control-port', '0']);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `fc-async: Loading ${file} failed: Module "${file}" needs an import attribute (at ${file}:1:7)\n`,
    );
  });

  it('is named when its top-level await never settles, and the exit code is 1 (Node said nothing, code 13)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
    const file = join(dir, 'app.mjs');
    writeFileSync(file, 'await new Promise(() => {});\nexport const handler = async () => "ok";\n');
    const { code, stderr } = await runCli(['dev', file, '--port', '0', '--control-port', '0']);
    expect(stderr).toBe(
      `fc-async: ${file}: its loading never finished: a top-level await waits for a promise that nothing settles\n`,
    );
    expect(code).toBe(1);
  });
});

describe('fc-async dev with an entry that calls process.exit() while it loads', () => {
  it.each([
    ['0', 'a script that ends by itself'],
    ['3', 'its own error code'],
  ])('process.exit(%s) (%s): named in one line with its place, and the exit code is 1', async (exitCode) => {
    // A start script, a config check that gives up: without a word, the emulator ended with the
    // entry's own code, 0 as well, as if it had served and stopped.
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
    const file = join(dir, 'app.mjs');
    writeFileSync(file, `console.error('DB_URL is not set');\nprocess.exit(${exitCode});\n`);
    const { code, stdout, stderr } = await runCli(['dev', file, '--port', '0', '--control-port', '0']);
    expect(stderr).toBe(
      `DB_URL is not set\nfc-async: ${file}: process.exit(${exitCode}) was called at ${file}:2:9 while it loaded, so nothing is served\n`,
    );
    expect(stdout).toBe('');
    expect(code).toBe(1);
  });

  it('says nothing of process.exit() for an exit of its own during the start (Ctrl-C while an entry loads)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
    const file = join(dir, 'app.mjs');
    const started = join(dir, 'started');
    writeFileSync(
      file,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(started)}, '');\n` +
        'await new Promise((resolve) => setTimeout(resolve, 60_000));\nexport const handler = async () => "ok";\n',
    );
    const proc = spawnCli(['dev', file, '--port', '0', '--control-port', '0'], {});
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    await waitFor(() => (existsSync(started) ? true : undefined));
    proc.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toBe('');
  });
});

describe('fc-async dev while an entry loads for long', () => {
  it.concurrent.each(['text', 'json'])(
    'says once (%s) that a top-level await has not settled, refuses connections meanwhile, and serves once it has',
    async (format) => {
      // A top-level await a timer keeps the process alive for: Node says nothing, and exits with no code.
      const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-'));
      const file = join(dir, 'app.mjs');
      const go = join(dir, 'go');
      writeFileSync(
        file,
        `import { existsSync } from 'node:fs';\n` +
          `await new Promise((resolve) => { const t = setInterval(() => { if (existsSync(${JSON.stringify(go)})) { clearInterval(t); resolve(); } }, 100); });\n` +
          'export const handler = async () => ({ statusCode: 200, body: "loaded" });\n',
      );
      const port = await freePort();
      const proc = spawnCli(['dev', file, '--port', String(port), '--control-port', '0', '--log-format', format], {});
      let stdout = '';
      proc.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
      });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
      const said = `still loading ${file} after 5 s: a top-level await has not settled (or its imports load slowly); the emulator's ports open once every entry has loaded`;
      const notices = () => stdout.split('\n').filter((line) => line.includes('still loading'));
      await waitFor(() => (notices().length > 0 ? true : undefined), 20_000);
      const [line] = notices();
      if (format === 'json') expect(JSON.parse(line as string)).toMatchObject({ level: 'info', message: said });
      else {
        expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}still loading /);
        expect(line?.endsWith(said)).toBe(true);
      }
      // Meanwhile nothing listens: a request is refused, not held.
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
      // Once: another five seconds say nothing more.
      await new Promise((resolve) => setTimeout(resolve, 6000));
      expect(notices()).toHaveLength(1);
      writeFileSync(go, '');
      const response = await waitFor(() => fetch(`http://127.0.0.1:${port}/`).catch(() => undefined), 20_000);
      expect(await response.text()).toBe('loaded');
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(notices()).toHaveLength(1);
    },
  );
});

// A NestJS app exported as it is: the emulator awaits its init(), where Nest runs the app's
// onModuleInit and onApplicationBootstrap hooks (a database connection), after the import.
describe("fc-async dev while a Nest app's init() waits", () => {
  /** An entry exporting a Nest-shaped app (init, listen, getHttpAdapter) over Express, whose init() runs `init`. */
  function nestEntry(init: (dir: string) => string): { dir: string; file: string } {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-messages-nest-'));
    symlinkSync(join(PKG, '../../node_modules'), join(dir, 'node_modules'), 'dir');
    const file = join(dir, 'app.mjs');
    writeFileSync(
      file,
      `import express from 'express';\nimport { existsSync } from 'node:fs';\nconst server = express();\n` +
        "server.get('/', (_req, res) => res.send('loaded'));\n" +
        `export const app = { async init() { ${init(dir)} }, getHttpAdapter: () => ({ getInstance: () => server }), listen() {} };\n`,
    );
    return { dir, file };
  }

  it('names the entry and its init(), not a top-level await, when init() never settles (exit 1)', async () => {
    const { file } = nestEntry(() => 'await new Promise(() => {});');
    const { code, stderr } = await runCli(['dev', file, '--port', '0', '--control-port', '0']);
    expect(stderr).toBe(
      `fc-async: ${file}: its loading never finished: the Nest app \`app\`'s init() (its onModuleInit and onApplicationBootstrap hooks) waits for a promise that nothing settles\n`,
    );
    expect(code).toBe(1);
  });

  it('says after 5 s that the init() has not settled, and serves once it has', async () => {
    // Its init() waits until the test makes a file: a timer keeps the process alive meanwhile.
    const { dir, file } = nestEntry(
      (dir) =>
        `await new Promise((resolve) => { const t = setInterval(() => { if (existsSync(${JSON.stringify(join(dir, 'go'))})) { clearInterval(t); resolve(); } }, 100); });`,
    );
    const go = join(dir, 'go');
    const port = await freePort();
    const proc = spawnCli(['dev', file, '--port', String(port), '--control-port', '0'], {});
    let stdout = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    const notices = () => stdout.split('\n').filter((line) => line.includes('still loading'));
    await waitFor(() => (notices().length > 0 ? true : undefined), 20_000);
    expect(notices()[0]).toMatch(
      new RegExp(
        `INFO {2}still loading ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} after 5 s: the Nest app \`app\`'s init\\(\\) \\(its onModuleInit and onApplicationBootstrap hooks\\) has not settled; the emulator's ports open once every entry has loaded$`,
      ),
    );
    writeFileSync(go, '');
    const response = await waitFor(() => fetch(`http://127.0.0.1:${port}/`).catch(() => undefined), 20_000);
    expect(await response.text()).toBe('loaded');
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('fc-async dev with an s.yaml and flags of an entry', () => {
  it('says in one line which flags the s.yaml overrides', async () => {
    const run = await startCli(['--region', 'cn-beijing', '--timeout', '5', '--name', 'other'], {
      cwd: yamlProject(),
    });
    await run.stop();
    const notices = run.stderr
      .join('')
      .split('\n')
      .filter((line) => line.includes('--name'));
    expect(notices).toHaveLength(1);
    // Every JSON line has its time, the CLI's own notices (start, SIGTERM) too.
    expect(JSON.parse(notices[0] as string)).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      level: 'info',
      message:
        'fc-async: the s.yaml gives each function its own settings: --name and --timeout are not used; --region applies only to functions whose s.yaml names no region',
    });
  });

  it('says nothing when no such flag is given', async () => {
    const run = await startCli([], { cwd: yamlProject() });
    await run.stop();
    expect(run.stderr.join('')).not.toContain('its own settings');
  });
});

describe('fc-async dev whose stdout reader went away', () => {
  it('exits 1 without blaming a function for calling process.exit()', async () => {
    const run = await startCli([ENTRY]);
    run.proc.stdout?.destroy();
    // Each request logs a line to the closed stdout: the first write gets EPIPE.
    for (let i = 0; i < 3 && run.proc.exitCode === null; i++) {
      await fetch(`${run.trigger}/`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    }
    expect(await run.exited).toBe(1);
    expect(run.stderr.join('')).not.toContain('process.exit()');
  });

  it('stops as on SIGTERM, saying so: an async task it accepted still runs to its end', async () => {
    // `fc-async dev app.mjs | head -3`: head quits, and with it the emulator, but not in the
    // middle of the tasks it answered 202 for.
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-reader-gone-'));
    const log = join(dir, 'log');
    const release = join(dir, 'release');
    writeFileSync(log, '');
    const run = await startCli([fixture('held-task.mjs'), '--shutdown-timeout', '60'], {
      env: { HELD_TASK_LOG: log, HELD_TASK_RELEASE: release },
    });
    const accepted = await fetch(`${run.trigger}/hold`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
    });
    expect(accepted.status).toBe(202);
    await waitFor(() => (readFileSync(log, 'utf8') === 'started\n' ? true : undefined));
    run.proc.stdout?.destroy();
    // A request's log line goes to the closed stdout: that write gets EPIPE. The emulator may stop
    // taking requests before this one's answer is out (its connection then reset): only the line matters.
    await fetch(`${run.trigger}/ping`, { signal: AbortSignal.timeout(2000) }).then(
      (answer) => answer.arrayBuffer(),
      () => undefined,
    );
    await waitFor(() => (run.stderr.join('').includes('went away') || run.proc.exitCode !== null ? true : undefined));
    expect(run.proc.exitCode).toBe(null);
    expect(JSON.parse(run.stderr.join('').trim()).message).toBe(
      'fc-async: the reader of the log went away (stdout or stderr closed): finishing running tasks for up to 60 s, then stopping what is left; press Ctrl-C to quit now',
    );
    writeFileSync(release, '');
    expect(await run.exited).toBe(1);
    expect(readFileSync(log, 'utf8')).toBe('started\nfinished\n');
    expect(run.stderr.join('')).not.toContain('process.exit()');
  });
});

describe('fc-async dev stopped as soon as it is ready', () => {
  it('stops on a SIGTERM sent on its ready line (none lost while its signal handlers are set)', async () => {
    // The ready line comes before the emulator's own handlers are in place: a script that stops
    // the emulator on seeing it must not find it ignoring the signal.
    for (let i = 0; i < 6; i++) {
      const run = await startCli([ENTRY]);
      expect(await run.stop()).toBe(0);
    }
  });
});
