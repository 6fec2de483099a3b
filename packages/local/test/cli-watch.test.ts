import { type ChildProcess, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../src/ports.js';
import { linkedEntryFolder, watchIgnore, watchTree } from '../src/watch-tree.js';
import { PKG, redisCluster, redisServer, runCli, spawnCli, waitFor } from './helpers.js';

// `fc-async dev --watch` in a child process, on a copy of a small Express app in a temporary
// folder (its node_modules a link to the repository's, so that `express` resolves).

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Bounds of the waits below: a restart loads the CLI again, slow on a busy machine. */
const START_MS = 30_000;

const app = (version: string) => `import { existsSync } from 'node:fs';
import express from 'express';
const app = express();
app.use(express.json());
app.get('/version', (_req, res) => res.json({ version: ${JSON.stringify(version)} }));
app.get('/spin', () => {
  for (;;);
});
app.post('/jobs', async (req, res) => {
  await new Promise((resolve) => setTimeout(resolve, req.body.ms ?? 0));
  // Held until the test creates this file.
  while (req.body.until && !existsSync(req.body.until)) await new Promise((resolve) => setTimeout(resolve, 20));
  res.json({ ranOn: ${JSON.stringify(version)} });
});
export default app;
`;

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-watch-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(join(PKG, '../../node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'app.mjs'), app('A'));
  return dir;
}

/**
 * What a `/jobs` task given `until` waits for: a file outside the project (creating it is no
 * change), that `openIn(ms)` creates `ms` later.
 */
function gate(): { until: string; openIn: (ms: number) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-watch-gate-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const until = join(dir, 'open');
  return {
    until,
    openIn: (ms) => {
      const timer = setTimeout(() => writeFileSync(until, ''), ms);
      cleanups.push(() => clearTimeout(timer));
    },
  };
}

/** The pid of a process and its parent's, or undefined once it is gone (a zombie counts as gone). */
function stat(pid: number): { ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return state === 'Z' ? undefined : { ppid: Number(ppid) };
}

/** The running emulators `pid` started (not the esbuild service tsx may run beside them). */
function emulatorsOf(pid: number): number[] {
  const isEmulator = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--supervisor-fd');
    } catch {
      return false;
    }
  };
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((p) => stat(p)?.ppid === pid && isEmulator(p));
}

interface WatchRun {
  proc: ChildProcess;
  /** Ready lines so far (one per emulator started). */
  ready: Record<string, unknown>[];
  lines: Record<string, unknown>[];
  /** The supervisor's notes and the emulators' stderr, as text. */
  stderr: () => string;
  trigger: string;
  control: string;
  exited: Promise<number | null>;
}

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;

/**
 * `fc-async dev --watch` in `dir`; resolves once the first emulator is ready. `ownGroup`: in a
 * process group of its own, as in a terminal, whose Ctrl-C goes to the whole group.
 */
async function startWatch(dir: string, args: string[], ownGroup = false, untilReady = true): Promise<WatchRun> {
  const argv = ['dev', '--watch', ...args, '--port', '0', '--control-port', '0', '--log-format', 'json'];
  const proc = ownGroup
    ? spawn(process.execPath, ['--import', TSX, join(PKG, 'src/cli.ts'), ...argv], {
        cwd: dir,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
    : spawnCli(argv, { cwd: dir });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() as string;
    for (const line of parts) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const ready = () => lines.filter((l) => l.kind === 'ready');
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`fc-async dev --watch exited: ${stderr}`);
    return untilReady ? ready()[0] : stderr.includes('watching') || undefined;
  }, START_MS);
  // Not ready yet: the ports are those the first ready line will name.
  const first = (ready()[0] ?? { trigger: '', control: '' }) as { trigger: string; control: string };
  return {
    proc,
    get ready() {
      return ready();
    },
    lines,
    stderr: () => stderr,
    trigger: first.trigger,
    control: first.control,
    exited,
  };
}

/** The body of `GET /version`, or undefined while nothing answers (between two emulators). */
const version = (run: WatchRun) =>
  fetch(`${run.trigger}/version`, { signal: AbortSignal.timeout(5000) }).then(
    async (res) => (res.ok ? ((await res.json()) as { version: string }).version : undefined),
    () => undefined,
  );

const restarts = (run: WatchRun) => run.stderr().match(/changed, restarting/g)?.length ?? 0;

describe('fc-async dev --watch', () => {
  it('restarts on a change to the entry, on the same ports', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs']);
    expect(run.stderr()).toMatch(/watching .* for changes \(tasks are in memory/);
    expect(await version(run)).toBe('A');

    writeFileSync(join(dir, 'app.mjs'), app('B'));
    await waitFor(async () => ((await version(run)) === 'B' ? true : undefined), START_MS);
    expect(run.stderr()).toContain('fc-async: app.mjs changed, restarting');
    expect(run.ready.at(-1)).toMatchObject({ trigger: run.trigger, control: run.control });
    // One emulator at a time.
    expect(emulatorsOf(run.proc.pid as number)).toHaveLength(1);
  });

  it('names the file saved through a temporary one (sed -i), not the temporary file gone since', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs']);
    // What `sed -i` does: writes a new file beside the entry, then renames it over the entry.
    writeFileSync(join(dir, 'sedX1b2c3'), app('B'));
    renameSync(join(dir, 'sedX1b2c3'), join(dir, 'app.mjs'));
    await waitFor(async () => ((await version(run)) === 'B' ? true : undefined), START_MS);
    expect(run.stderr()).toContain('fc-async: app.mjs changed, restarting');
    expect(run.stderr()).not.toContain('sedX1b2c3');
  });

  it('passes each --redact-header on to its emulator', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs', '--redact-header', 'x-a', '--redact-header', 'x-b']);
    const headers = { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'r1' };
    const accepted = await fetch(`${run.trigger}/jobs`, {
      method: 'POST',
      headers: { ...headers, 'x-a': 'secret-a', 'x-b': 'secret-b' },
      body: '{}',
    });
    expect(accepted.status).toBe(202);
    const task = await (await fetch(new URL('2023-03-30/functions/app/async-tasks/r1', run.control))).text();
    expect(task).toContain('taskPayload');
    expect(task).not.toMatch(/secret-a|secret-b/);
  });

  it('takes a change made during a restart once the old emulator is gone, never two at once', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs']);
    // A running task keeps the old emulator stopping until the test lets it end (not for a time
    // the restart might outlast on a busy machine: the change would then come after it).
    const held = gate();
    const accepted = await fetch(`${run.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
      body: JSON.stringify({ until: held.until }),
    });
    expect(accepted.status).toBe(202);
    writeFileSync(join(dir, 'app.mjs'), app('B'));
    await waitFor(() => (restarts(run) === 1 ? true : undefined), START_MS);
    // Later than the 500 ms within which the emulator counts a second signal as the same one: a
    // second SIGTERM for this change would make the stopping emulator quit at once.
    await new Promise((resolve) => setTimeout(resolve, 700));
    writeFileSync(join(dir, 'app.mjs'), app('C'));
    // The task ends once the supervisor has had the change (its 150 ms debounce, many times over).
    held.openIn(2000);
    let most = 0;
    await waitFor(async () => {
      most = Math.max(most, emulatorsOf(run.proc.pid as number).length);
      return (await version(run)) === 'C' ? true : undefined;
    }, START_MS);
    expect(most).toBe(1);
    // The change was taken by the next emulator: no second restart of its own.
    expect(restarts(run)).toBe(1);
    // The task had its time to finish in the old emulator.
    expect(run.lines).toContainEqual(expect.objectContaining({ kind: 'attempt', status: 'Succeeded' }));
  });

  it('kills an emulator stuck in a loop that does not stop in time, and starts the new one', {
    timeout: 90_000,
  }, async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs', '--shutdown-timeout', '0']);
    void fetch(`${run.trigger}/spin`).catch(() => undefined);
    // Stuck once nothing answers any more.
    await waitFor(async () => ((await version(run)) === undefined ? true : undefined), START_MS);
    writeFileSync(join(dir, 'app.mjs'), app('B'));
    await waitFor(async () => ((await version(run)) === 'B' ? true : undefined), 60_000);
    expect(run.stderr()).toContain('fc-async: the emulator did not stop in time: killing it');
  });

  it('watches the folder of ./s.yaml, and the s.yaml itself', async () => {
    const dir = project();
    writeFileSync(join(dir, 'a.mjs'), `export const handler = async () => ({ statusCode: 200, body: 'A' });\n`);
    writeFileSync(join(dir, 'b.mjs'), `export const handler = async () => ({ statusCode: 200, body: 'B' });\n`);
    const yaml = (handler: string) => `edition: 3.0.0
name: watched
resources:
  web:
    component: fc3
    props:
      functionName: web
      runtime: nodejs20
      code: ./
      handler: ${handler}
      triggers:
        - triggerName: http
          triggerType: http
`;
    writeFileSync(join(dir, 's.yaml'), yaml('a.handler'));
    const run = await startWatch(dir, []);
    const url = (run.ready[0] as { functions: { url: string }[] }).functions[0]?.url as string;
    const body = () =>
      fetch(url, { signal: AbortSignal.timeout(5000) }).then(
        (r) => (r.ok ? r.text() : undefined),
        () => undefined,
      );
    expect(await body()).toBe('A');
    writeFileSync(join(dir, 's.yaml'), yaml('b.handler'));
    await waitFor(async () => ((await body()) === 'B' ? true : undefined), START_MS);
    expect(run.stderr()).toContain('fc-async: s.yaml changed, restarting');
  });

  it('does not restart for editor temporary files nor its own output folder', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs']);
    mkdirSync(join(dir, '.fc-async'));
    writeFileSync(join(dir, '.fc-async', 'dest.jsonl'), '{}\n');
    writeFileSync(join(dir, '.app.mjs.swp'), 'x');
    writeFileSync(join(dir, 'app.mjs~'), 'x');
    writeFileSync(join(dir, '.#app.mjs'), 'x');
    writeFileSync(join(dir, 'app.mjs'), app('B'));
    await waitFor(async () => ((await version(run)) === 'B' ? true : undefined), START_MS);
    // Had the others counted, the restart line would name the first of them.
    expect(run.stderr()).toContain('fc-async: app.mjs changed, restarting');
    expect(restarts(run)).toBe(1);
  });

  /**
   * `proj/` served, its entry a symbolic link to a file outside it (`shared/app.mjs`), reached
   * directly (`app.mjs -> ../shared/app.mjs`) or through a linked folder (`app.mjs -> lib/app.mjs`,
   * `lib -> ../shared`): the file Node loads, and its folder, are not under the folder watched.
   */
  function linkedEntry(through: 'file' | 'folder'): { proj: string; shared: string } {
    const base = mkdtempSync(join(tmpdir(), 'fc-async-watch-link-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    symlinkSync(join(PKG, '../../node_modules'), join(base, 'node_modules'), 'dir');
    const proj = join(base, 'proj');
    const shared = join(base, 'shared');
    mkdirSync(proj);
    mkdirSync(shared);
    writeFileSync(join(shared, 'app.mjs'), app('A'));
    if (through === 'file') symlinkSync('../shared/app.mjs', join(proj, 'app.mjs'));
    else {
      symlinkSync('../shared', join(proj, 'lib'), 'dir');
      symlinkSync('lib/app.mjs', join(proj, 'app.mjs'));
    }
    return { proj, shared };
  }

  it.each(['file', 'folder'] as const)(
    'restarts on a change to the file a symbolic link as the entry points to (a linked %s)',
    async (through) => {
      const { proj, shared } = linkedEntry(through);
      const run = await startWatch(proj, ['app.mjs']);
      expect(await version(run)).toBe('A');
      writeFileSync(join(shared, 'app.mjs'), app('B'));
      await waitFor(async () => ((await version(run)) === 'B' ? true : undefined), START_MS);
      expect(run.stderr()).toMatch(/fc-async: .*shared\/app\.mjs changed, restarting/);
      expect(restarts(run)).toBe(1);
    },
  );

  it('waits for a change after an entry that fails to load, and comes back once it is fixed', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs']);
    writeFileSync(join(dir, 'app.mjs'), 'export default {\n');
    await waitFor(() => (run.stderr().includes('fc-async: waiting for a change') ? true : undefined), START_MS);
    expect(run.stderr()).toMatch(/fc-async: Loading .*app\.mjs failed/);
    // Not restarted in a loop: no emulator until the next change.
    expect(run.proc.exitCode).toBeNull();
    expect(emulatorsOf(run.proc.pid as number)).toEqual([]);
    expect(await version(run)).toBeUndefined();

    writeFileSync(join(dir, 'app.mjs'), app('C'));
    await waitFor(async () => ((await version(run)) === 'C' ? true : undefined), START_MS);
    expect(run.stderr().match(/waiting for a change/g)).toHaveLength(1);
  });

  // `fc-async dev proj/src/app.ts` watches proj/src/; the entry compiles with proj/tsconfig.json.
  // (Not in the folder the command runs in: the CLI runs from source under tsx, which reads that one.)
  it("watches the tsconfig.json a TypeScript entry compiles with, above the entry's folder, and only it", async () => {
    const dir = project();
    const proj = join(dir, 'proj');
    mkdirSync(join(proj, 'src'), { recursive: true });
    writeFileSync(join(proj, 'src/app.ts'), app('T'));
    writeFileSync(join(proj, 'tsconfig.json'), '{ "extends": "./base.json" }\n');
    const run = await startWatch(dir, ['proj/src/app.ts'], false, false);
    await waitFor(() => (run.stderr().includes('fc-async: waiting for a change') ? true : undefined), START_MS);
    expect(run.stderr()).toContain(
      `fc-async: watching ${join(proj, 'src')} and ${join(proj, 'tsconfig.json')} for changes`,
    );
    expect(run.stderr()).toMatch(
      /Loading .*app\.ts failed: its tsconfig .*could not be read: File '\.\/base\.json' not found\./,
    );
    // Another file of the tsconfig's folder is no change: written first, it would be the one named.
    writeFileSync(join(proj, 'notes.md'), 'not code\n');
    writeFileSync(join(proj, 'tsconfig.json'), '{ "compilerOptions": { "strict": true } }\n');
    // Its first emulator: the ports were not known before.
    const ready = (await waitFor(() => run.ready[0], START_MS)) as { trigger: string };
    expect(await version({ ...run, trigger: ready.trigger })).toBe('T');
    expect(run.stderr()).toMatch(/fc-async: proj\/tsconfig\.json changed, restarting/);
    expect(run.stderr()).not.toContain('notes.md');
    expect(restarts(run)).toBe(1);
  });

  it('names a TSX_TSCONFIG_PATH in no folder at all as the start does, and waits for a change', async () => {
    const dir = project();
    writeFileSync(join(dir, 'app.ts'), app('T'));
    // Outside the watched folder, as the tsconfig of a TypeScript entry that is watched alone.
    const nowhere = join(`${dir}-nowhere`, 'tsconfig.json');
    // Built: the CLI from source runs under tsx, which would read the variable itself.
    const proc = spawnCli(['dev', '--watch', 'app.ts', '--port', '0', '--control-port', '0'], {
      built: true,
      cwd: dir,
      env: { TSX_TSCONFIG_PATH: nowhere },
    });
    cleanups.push(() => proc.kill('SIGKILL'));
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    await waitFor(() => (stderr.includes('fc-async: waiting for a change') ? true : undefined), START_MS);
    expect(stderr).toContain(`fc-async: watching ${dir} for changes`);
    expect(stderr).toContain(`its tsconfig ${nowhere} (TSX_TSCONFIG_PATH) could not be read`);
  });

  it('with --store sqlite:PATH, a delayed task accepted before a restart runs after it', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs', '--store', 'sqlite:tasks.db', '--shutdown-timeout', '0']);
    expect(run.stderr()).not.toContain('tasks are in memory');
    const accepted = await fetch(`${run.trigger}/jobs`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': 'across_restart',
        'x-fc-async-delay': '3',
      },
      body: '{}',
    });
    expect(accepted.status).toBe(202);
    writeFileSync(join(dir, 'app.mjs'), app('B'));
    await waitFor(async () => ((await version(run)) === 'B' ? true : undefined), START_MS);

    const task = await waitFor(async () => {
      const res = await fetch(`${run.control}2023-03-30/functions/app/async-tasks/across_restart`).catch(
        () => undefined,
      );
      const body = res?.ok ? ((await res.json()) as { status: string; returnPayload?: string }) : undefined;
      return body && !['Enqueued', 'Dequeued', 'Running'].includes(body.status) ? body : undefined;
    }, START_MS);
    expect(task.status).toBe('Succeeded');
    // It ran on the new code, in the new emulator.
    expect(JSON.parse(task.returnPayload as string)).toEqual({ ranOn: 'B' });
    // The SQLite files the emulators write are not changes.
    expect(restarts(run)).toBe(1);
  });

  // Redis down when the emulator starts: it used to say only `Redis did not answer within 10000
  // ms (connect ECONNREFUSED ...)`, naming neither the --redis it tried nor the code, then wait
  // for an edit, though what was wrong was Redis, not the project.
  it('--redis with Redis down: one line names it (credentials masked) and the code; Redis coming up starts the emulator', {
    timeout: 120_000,
  }, async () => {
    const dir = project();
    const port = await freePort('127.0.0.1');
    const redis = `redis://:s3cret@127.0.0.1:${port}`;
    const run = await startWatch(dir, ['app.mjs', '--redis', redis], false, false);
    const waiting = `waiting for a change, or for Redis at redis://***@127.0.0.1:${port} to come up`;
    await waitFor(() => (run.stderr().includes(waiting) ? true : undefined), START_MS);
    expect(run.stderr()).toContain(
      `fc-async: Redis at redis://***@127.0.0.1:${port} is not ready (RedisUnavailable): `,
    );
    expect(run.stderr()).not.toContain('s3cret');
    expect(emulatorsOf(run.proc.pid as number)).toEqual([]);

    await redisServer((stop) => cleanups.push(stop), { port, args: ['--requirepass', 's3cret'] });
    await waitFor(() => (run.ready.length > 0 ? true : undefined), 60_000);
    const ready = run.ready[0] as { trigger: string };
    const res = await fetch(`${ready.trigger}/version`);
    expect(await res.json()).toEqual({ version: 'A' });
    expect(run.stderr().match(/is not ready/g)).toHaveLength(1);
  });

  it('--redis-cluster with the cluster down: names it by its nodes (no password); the cluster coming up starts the emulator', {
    timeout: 120_000,
  }, async () => {
    const dir = project();
    const ports = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')];
    const [first, second] = ports as [number, number];
    const args = [
      '--redis-cluster',
      '--redis',
      `redis://:s3cret@127.0.0.1:${first}`,
      '--redis',
      `redis://127.0.0.1:${second}`,
    ];
    const run = await startWatch(dir, ['app.mjs', ...args], false, false);
    const cluster = `the Redis Cluster at 127.0.0.1:${first}, 127.0.0.1:${second}`;
    await waitFor(
      () => (run.stderr().includes(`waiting for a change, or for ${cluster} to come up`) ? true : undefined),
      START_MS,
    );
    expect(run.stderr()).toContain(
      `fc-async: The Redis Cluster at 127.0.0.1:${first}, 127.0.0.1:${second} is not ready (RedisUnavailable): `,
    );
    expect(emulatorsOf(run.proc.pid as number)).toEqual([]);

    await redisCluster((stop) => cleanups.push(stop), { ports, password: 's3cret' });
    await waitFor(() => (run.ready.length > 0 ? true : undefined), 60_000);
    const ready = run.ready[0] as { trigger: string };
    const res = await fetch(`${ready.trigger}/version`);
    expect(await res.json()).toEqual({ version: 'A' });
    expect(run.stderr()).toContain(`fc-async: ${cluster} answers, starting`);
    expect(run.stderr()).not.toContain('s3cret');
  });

  it('--redis with Redis down: a Ctrl-C while it waits for Redis exits at once', async () => {
    const port = await freePort('127.0.0.1');
    const run = await startWatch(project(), ['app.mjs', '--redis', `redis://127.0.0.1:${port}`], false, false);
    await waitFor(() => (run.stderr().includes('or for Redis at') ? true : undefined), START_MS);
    run.proc.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });

  it('on SIGTERM stops its emulator and exits with its code', async () => {
    const run = await startWatch(project(), ['app.mjs']);
    const [child] = emulatorsOf(run.proc.pid as number);
    expect(child).toBeDefined();
    run.proc.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    await waitFor(() => (stat(child as number) ? undefined : true), START_MS);
    expect(run.stderr()).toContain('SIGTERM: finishing running tasks');
  });

  it('on SIGHUP (its terminal closed) stops its emulator as on SIGTERM and exits with its code', async () => {
    const run = await startWatch(project(), ['app.mjs']);
    const [child] = emulatorsOf(run.proc.pid as number);
    run.proc.kill('SIGHUP');
    expect(await run.exited).toBe(0);
    expect(run.proc.signalCode).toBe(null);
    expect(run.stderr()).toContain('SIGHUP: finishing running tasks');
    await waitFor(() => (stat(child as number) ? undefined : true), START_MS);
  });

  it('passes a second Ctrl-C on, and its emulator quits at once', async () => {
    const run = await startWatch(project(), ['app.mjs', '--shutdown-timeout', '60']);
    const accepted = await fetch(`${run.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
      body: JSON.stringify({ ms: 60_000 }),
    });
    expect(accepted.status).toBe(202);
    run.proc.kill('SIGINT');
    await waitFor(() => (run.stderr().includes('SIGINT: finishing running tasks') ? true : undefined), START_MS);
    // A second press, not the first one told twice (within 500 ms: ignored).
    await new Promise((resolve) => setTimeout(resolve, 700));
    run.proc.kill('SIGINT');
    expect(await run.exited).toBe(130);
  });

  it('on a Ctrl-C during a restart, lets the emulator stopping for it finish its tasks, and exits', async () => {
    const dir = project();
    const run = await startWatch(dir, ['app.mjs']);
    const held = gate();
    const accepted = await fetch(`${run.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'restart' },
      // Running until the Ctrl-C has come, however long the restart took to begin.
      body: JSON.stringify({ until: held.until }),
    });
    expect(accepted.status).toBe(202);
    writeFileSync(join(dir, 'app.mjs'), app('B'));
    await waitFor(() => (run.stderr().includes('SIGTERM: finishing running tasks') ? true : undefined), START_MS);
    // Later than the 500 ms within which the emulator counts a second signal as the same Ctrl-C:
    // passed on, this one would make it quit at once, its task dropped.
    await new Promise((resolve) => setTimeout(resolve, 700));
    run.proc.kill('SIGINT');
    // The task ends once the supervisor has had the signal (called the restart off).
    held.openIn(1000);
    expect(await run.exited).toBe(0);
    expect(run.lines).toContainEqual(
      expect.objectContaining({ kind: 'attempt', taskId: 'restart', status: 'Succeeded' }),
    );
    // The restart was called off.
    expect(run.ready).toHaveLength(1);
  });

  it('kills an emulator stuck in a loop that does not stop in time after a SIGTERM, and exits', {
    timeout: 90_000,
  }, async () => {
    const run = await startWatch(project(), ['app.mjs', '--shutdown-timeout', '0']);
    const [child] = emulatorsOf(run.proc.pid as number);
    void fetch(`${run.trigger}/spin`).catch(() => undefined);
    await waitFor(async () => ((await version(run)) === undefined ? true : undefined), START_MS);
    run.proc.kill('SIGTERM');
    expect(await run.exited).toBe(137);
    expect(run.stderr()).toContain('fc-async: the emulator did not stop in time: killing it');
    await waitFor(() => (stat(child as number) ? undefined : true), START_MS);
  });

  it("counts a terminal's Ctrl-C (to the whole process group) once: running tasks finish", async () => {
    const run = await startWatch(project(), ['app.mjs'], true);
    const accepted = await fetch(`${run.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'ctrl_c' },
      body: JSON.stringify({ ms: 1000 }),
    });
    expect(accepted.status).toBe(202);
    process.kill(-(run.proc.pid as number), 'SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.lines).toContainEqual(
      expect.objectContaining({ kind: 'attempt', taskId: 'ctrl_c', status: 'Succeeded' }),
    );
  });

  it('exits 1 once the reader of the log is gone (| head quit), as without --watch, rather than wait for a change', async () => {
    const run = await startWatch(project(), ['app.mjs']);
    const [child] = emulatorsOf(run.proc.pid as number);
    run.proc.stdout?.destroy();
    // The request's log line goes to the closed stdout (the emulator's, which is the supervisor's).
    await fetch(`${run.trigger}/version`, { signal: AbortSignal.timeout(5000) });
    const waiting = waitFor(() => (run.stderr().includes('waiting for a change') ? 'waiting' : undefined), START_MS);
    expect(await Promise.race([run.exited, waiting])).toBe(1);
    expect(run.stderr()).toContain('fc-async: the reader of the log went away (stdout or stderr closed)');
    await waitFor(() => (stat(child as number) ? undefined : true), START_MS);
  });

  it('keeps the ports it is given: the same one twice is refused as without --watch, and it exits 1', async () => {
    const dir = project();
    const port = String(await freePort('127.0.0.1'));
    // A port in use: no edit of the project frees it, so no waiting for a change.
    const { code, stderr } = await runCli(['dev', '--watch', 'app.mjs', '--port', port, '--control-port', port], {
      cwd: dir,
    });
    expect(code).toBe(1);
    expect(stderr).toContain(
      `Port ${port} on 127.0.0.1 is taken by the HTTP trigger (--port ${port}): choose another with --control-port`,
    );
    expect(stderr).not.toContain('waiting for a change');
  });

  it('exits 1 at once for a control host beyond loopback without an access key, as without --watch', async () => {
    const args = ['dev', '--watch', 'app.mjs', '--port', '0', '--control-port', '0', '--control-host', '0.0.0.0'];
    const { code, stderr } = await runCli(args, { cwd: project() });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^fc-async: The control plane on 0\.0\.0\.0 would be reachable from other machines/);
    expect(stderr).not.toContain('waiting for a change');
  });

  it('refuses a bad --store at once, as without --watch, instead of waiting for a change', async () => {
    const { code, stderr } = await runCli(['dev', '--watch', 'app.mjs', '--store', 'postgres:x'], { cwd: project() });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^fc-async: .*--store.*sqlite:PATH/);
    expect(stderr).not.toContain('waiting for a change');
  });

  it('exits 1 when the folder to watch does not exist', async () => {
    const { code, stderr } = await runCli(['dev', '--watch', 'no-such-folder/app.mjs'], { cwd: project() });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^fc-async: cannot watch .*no-such-folder: .*ENOENT/);
  });

  it('leaves no emulator behind when it is killed', async () => {
    const run = await startWatch(project(), ['app.mjs']);
    const [child] = emulatorsOf(run.proc.pid as number);
    expect(child).toBeDefined();
    run.proc.kill('SIGKILL');
    await run.exited;
    await waitFor(
      () =>
        fetch(`${run.trigger}/version`, { signal: AbortSignal.timeout(2000) }).then(
          () => undefined,
          () => true,
        ),
      START_MS,
    );
    await waitFor(() => (stat(child as number) ? undefined : true), START_MS);
  });

  it('leaves no emulator behind when it is killed, even one stuck in a loop', { timeout: 90_000 }, async () => {
    const run = await startWatch(project(), ['app.mjs', '--shutdown-timeout', '0']);
    const [child] = emulatorsOf(run.proc.pid as number);
    expect(child).toBeDefined();
    void fetch(`${run.trigger}/spin`).catch(() => undefined);
    await waitFor(async () => ((await version(run)) === undefined ? true : undefined), START_MS);
    run.proc.kill('SIGKILL');
    await run.exited;
    // Its main thread runs no handler: the watchdog thread kills it 20 s (and --shutdown-timeout) later.
    await waitFor(() => (stat(child as number) ? undefined : true), 45_000);
  });
});

describe('what --watch ignores', () => {
  const ignored = watchIgnore({ root: '/app', outDir: '/app/.fc-async', sqlitePath: '/app/data/tasks.db' });

  it.each([
    '/app/node_modules/express/index.js',
    '/app/packages/a/node_modules/x.js',
    '/app/.git/index',
    '/app/.fc-async/dest.jsonl',
    '/app/data/tasks.db',
    '/app/data/tasks.db-wal',
    '/app/data/tasks.db-shm',
    '/app/data/tasks.orders.db-journal',
    '/app/src/.app.ts.swp',
    '/app/src/app.ts~',
    '/app/src/.#app.ts',
    '/app/src/app.ts.tmp',
    '/app/src/4913',
  ])('ignores %s', (path) => {
    expect(ignored(path)).toBe(true);
  });

  it.each(['/app/src/app.ts', '/app/dist/app.js', '/app/s.yaml', '/app/data/seed.json', '/app/data/tasks.ts'])(
    'watches %s',
    (path) => {
      expect(ignored(path)).toBe(false);
    },
  );
});

describe('what --watch ignores, through symbolic links', () => {
  /** A project folder and a link to it, as `cd projlink` or `--store sqlite:projlink/...` reach it. */
  function project() {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-ignore-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const real = join(dir, 'proj');
    const link = join(dir, 'projlink');
    mkdirSync(real);
    symlinkSync(real, link);
    return { real, link };
  }

  it('ignores the store and --out-dir reached through a link to the watched folder', () => {
    const { real, link } = project();
    const ignored = watchIgnore({
      root: real,
      outDir: join(link, 'records'),
      sqlitePath: join(link, 'data/tasks.db'),
    });
    expect(ignored(join(real, 'data/tasks.db-wal'))).toBe(true);
    expect(ignored(join(real, 'records/f.destination.jsonl'))).toBe(true);
    expect(ignored(join(real, 'app.mjs'))).toBe(false);
  });

  it('ignores the store and --out-dir when the watched folder is the link', () => {
    const { real, link } = project();
    const ignored = watchIgnore({
      root: link,
      outDir: join(real, '.fc-async'),
      sqlitePath: join(real, 'data/tasks.db'),
    });
    expect(ignored(join(link, 'data/tasks.db'))).toBe(true);
    expect(ignored(join(link, 'data/tasks.db-journal'))).toBe(true);
    expect(ignored(join(link, '.fc-async/f.jsonl'))).toBe(true);
    expect(ignored(join(link, 'data/seed.json'))).toBe(false);
  });

  it('ignores the folders the emulator makes for the store and --out-dir at its start, not those already there', () => {
    const { real } = project();
    mkdirSync(join(real, 'src'));
    const ignored = watchIgnore({
      root: real,
      outDir: join(real, 'out/records'),
      sqlitePath: join(real, 'var/data/tasks.db'),
    });
    expect(ignored(join(real, 'var'))).toBe(true);
    expect(ignored(join(real, 'var/data'))).toBe(true);
    expect(ignored(join(real, 'out'))).toBe(true);
    expect(ignored(real)).toBe(false);
    expect(
      watchIgnore({ root: real, outDir: join(real, '.fc-async'), sqlitePath: join(real, 'src/t.db') })(
        join(real, 'src'),
      ),
    ).toBe(false);
  });
});

describe('linkedEntryFolder', () => {
  function layout() {
    const base = mkdtempSync(join(tmpdir(), 'fc-async-linked-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    for (const dir of ['proj/src', 'shared']) mkdirSync(join(base, dir), { recursive: true });
    writeFileSync(join(base, 'proj/src/app.mjs'), '');
    writeFileSync(join(base, 'shared/app.mjs'), '');
    symlinkSync('../shared/app.mjs', join(base, 'proj/linked.mjs'));
    symlinkSync('src/app.mjs', join(base, 'proj/inside.mjs'));
    symlinkSync('proj', join(base, 'projlink'));
    return realpathSync(base);
  }

  it('names the real folder of an entry linked to a file outside the watched folder', () => {
    const base = layout();
    expect(linkedEntryFolder(join(base, 'proj/linked.mjs'), join(base, 'proj'))).toBe(join(base, 'shared'));
    expect(linkedEntryFolder(join(base, 'projlink/linked.mjs'), join(base, 'projlink'))).toBe(join(base, 'shared'));
  });

  it('names none for an entry under the watched folder, through links or not, nor for one not there', () => {
    const base = layout();
    expect(linkedEntryFolder(join(base, 'proj/src/app.mjs'), join(base, 'proj/src'))).toBeUndefined();
    expect(linkedEntryFolder(join(base, 'proj/inside.mjs'), join(base, 'proj'))).toBeUndefined();
    expect(linkedEntryFolder(join(base, 'projlink/inside.mjs'), join(base, 'projlink'))).toBeUndefined();
    expect(linkedEntryFolder(join(base, 'proj/missing.mjs'), join(base, 'proj'))).toBeUndefined();
  });
});

describe('watchTree', () => {
  const watches = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;

  it('watches each folder once, not each file, and none under an ignored folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-tree-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'src/lib'), { recursive: true });
    mkdirSync(join(dir, 'node_modules/pkg/lib'), { recursive: true });
    for (let i = 0; i < 20; i++) {
      writeFileSync(join(dir, `src/lib/f${i}.js`), '');
      writeFileSync(join(dir, `node_modules/pkg/lib/f${i}.js`), '');
    }
    const before = watches();
    const tree = watchTree(dir, watchIgnore({ root: dir, outDir: join(dir, '.fc-async') }), () => {});
    cleanups.push(() => tree.close());
    // The folder, src and src/lib.
    expect(watches() - before).toBe(3);
    tree.close();
    // Handles close on the next turn of the loop.
    await waitFor(() => (watches() === before ? true : undefined));
  });

  it('follows folders made after it started, and lets go of removed ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-tree-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const seen = new Set<string>();
    const before = watches();
    const tree = watchTree(
      dir,
      () => false,
      (path) => seen.add(path),
    );
    cleanups.push(() => tree.close());
    mkdirSync(join(dir, 'new'));
    await waitFor(() => (watches() - before === 2 ? true : undefined));
    writeFileSync(join(dir, 'new', 'x.js'), 'x');
    await waitFor(() => (seen.has(join(dir, 'new', 'x.js')) ? true : undefined));
    rmSync(join(dir, 'new'), { recursive: true });
    await waitFor(() => (watches() - before === 1 ? true : undefined));
  });

  it('watches its own folder again once it is removed and made again (a clean build of dist/)', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'fc-async-tree-'));
    cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
    const dir = join(parent, 'dist');
    mkdirSync(join(dir, 'lib'), { recursive: true });
    const seen = new Set<string>();
    const tree = watchTree(
      dir,
      () => false,
      (path) => seen.add(path),
    );
    cleanups.push(() => tree.close());
    rmSync(dir, { recursive: true });
    // A change of the folder itself: the emulator restarts (and waits for its entry).
    await waitFor(() => (seen.has(dir) ? true : undefined));
    seen.clear();
    mkdirSync(join(dir, 'lib'), { recursive: true });
    await waitFor(() => (seen.has(dir) ? true : undefined));
    let n = 0;
    await waitFor(() => {
      writeFileSync(join(dir, 'lib', 'app.js'), String(n++));
      return seen.has(join(dir, 'lib', 'app.js')) ? true : undefined;
    });
  });

  it('watches its own folder removed and made again before the removal is handled (rm -rf dist && mkdir dist)', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'fc-async-tree-'));
    cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
    const dir = join(parent, 'dist');
    mkdirSync(dir);
    const seen = new Set<string>();
    const tree = watchTree(
      dir,
      () => false,
      (path) => seen.add(path),
    );
    cleanups.push(() => tree.close());
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    await waitFor(() => (seen.has(dir) ? true : undefined));
    // A file of the new folder, written until it is seen: the watch of the removed one sees nothing.
    let n = 0;
    await waitFor(() => {
      writeFileSync(join(dir, 'app.js'), String(n++));
      return seen.has(join(dir, 'app.js')) ? true : undefined;
    });
  });

  it('watches a sub-folder removed and made again before its events are handled (rm -rf dist && mkdir dist)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-tree-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const dist = join(dir, 'dist');
    mkdirSync(dist);
    const seen = new Set<string>();
    const tree = watchTree(
      dir,
      () => false,
      (path) => seen.add(path),
    );
    cleanups.push(() => tree.close());
    // In one turn of the loop: the events come once the new folder is there, and the watch held
    // for that path was the old folder's (it kept it, and nothing in the new one was seen).
    rmSync(dist, { recursive: true });
    mkdirSync(dist);
    await waitFor(() => (seen.has(dist) ? true : undefined));
    let n = 0;
    await waitFor(() => {
      writeFileSync(join(dist, 'app.js'), String(n++));
      return seen.has(join(dist, 'app.js')) ? true : undefined;
    });
  });

  it('refuses a folder that does not exist', () => {
    expect(() =>
      watchTree(
        join(tmpdir(), 'fc-async-no-such-folder'),
        () => false,
        () => {},
      ),
    ).toThrow(/ENOENT/);
  });
});
