import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import FC, * as $FC from '@alicloud/fc20230330';
import { $OpenApiUtil } from '@alicloud/openapi-core';
import { type BrowserContext, chromium } from 'playwright-core';
import { type Emulator, type EmulatorOptions, startEmulator } from '../src/index.js';

export { $FC };

export const PKG = fileURLToPath(new URL('..', import.meta.url));
export const fixture = (name: string) => join(PKG, 'test/fixtures', name);
export const example = (name: string) => join(PKG, 'examples', name);

/** The emulator serving the echo fixture as function `echo` on free ports, quiet unless `output` is given. */
export const startEcho = (options: EmulatorOptions = {}) =>
  startEmulator({
    entry: fixture('echo-handler.mjs'),
    name: 'echo',
    port: 0,
    controlPort: 0,
    output: () => {},
    ...options,
  });

/** The emulator serving the jobs fixture (an Express app) as function `jobs` on free ports, quiet unless `output` is given. */
export const startJobs = (options: EmulatorOptions = {}) =>
  startEmulator({
    entry: fixture('jobs-app.ts'),
    name: 'jobs',
    port: 0,
    controlPort: 0,
    output: () => {},
    ...options,
  });

/**
 * The emulator serving one FC 2.0 HTTP function `web` (an s.yaml `fc` component) whose CommonJS
 * `handler(req, resp, context)` is `source`, from a temporary folder that `close()` removes.
 */
export async function startFc2Web(source: string): Promise<{ emulator: Emulator; close: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-fc2-web-'));
  writeFileSync(join(root, 'index.cjs'), source);
  writeFileSync(
    join(root, 's.yaml'),
    `services:
  web:
    component: fc
    props:
      function: { name: web, codeUri: ./, handler: index.handler, runtime: nodejs18 }
      triggers: [{ name: http, type: http }]
`,
  );
  const emulator = await startEmulator({ config: join(root, 's.yaml'), port: 0, controlPort: 0, output: () => {} });
  return {
    emulator,
    close: async () => {
      await emulator.close({ timeoutMs: 1000 });
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const require = createRequire(import.meta.url);
/** tsx's loader by absolute URL, so that the CLI runs from source whatever the working folder. */
const TSX = pathToFileURL(require.resolve('tsx')).href;
const CLI = join(PKG, 'src/cli.ts');

/** One running `fc-async dev`, with its JSON log lines. */
export interface CliRun {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string[];
  trigger: string;
  control: string;
  exited: Promise<number | null>;
  /**
   * Sends `signal` (SIGTERM), resolves the exit code; rejects, saying so, and kills the CLI when it
   * has not exited `withinMs` (30 s) later, rather than wait for the test's timeout.
   */
  stop(signal?: NodeJS.Signals, withinMs?: number): Promise<number | null>;
}

const children = new Set<ChildProcess>();
// A test that fails half-way must not leave an emulator running: kill what is left on exit.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** The `fc-async` command as npm links it: `bin/fc-async.js` over the built `dist/`. */
export const BUILT_BIN = join(PKG, 'bin/fc-async.js');

/** How {@link spawnCli} runs the CLI. */
export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Runs the built command (`bin/fc-async.js`, `dist/`) under plain `node`, with no loader and no
   * NODE_OPTIONS, as a user's shell runs it; by default the CLI runs from source through tsx.
   */
  built?: boolean;
}

/** `fc-async` from source (or built) in a child process (killed after the tests if still running). */
export function spawnCli(args: string[], options: CliOptions) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
  if (options.built) delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, options.built ? [BUILT_BIN, ...args] : ['--import', TSX, CLI, ...args], {
    cwd: options.cwd ?? PKG,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Starts `fc-async dev` on free ports with JSON logs; resolves once it prints its `ready` line. */
export function startCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const proc = spawnCli(['dev', ...args, '--port', '0', '--control-port', '0', '--log-format', 'json'], options);
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`fc-async dev did not start: ${stderr.join('')}`));
    }, 30_000);
    let buffered = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.kind === 'ready') {
          clearTimeout(timer);
          resolve({
            proc,
            lines,
            stderr,
            trigger: entry.trigger as string,
            control: entry.control as string,
            exited,
            stop(signal = 'SIGTERM', withinMs = 30_000) {
              if (proc.exitCode === null) proc.kill(signal);
              let timer: NodeJS.Timeout | undefined;
              const late = new Promise<never>((_, fail) => {
                timer = setTimeout(() => {
                  proc.kill('SIGKILL');
                  fail(new Error(`fc-async dev did not exit within ${withinMs / 1000} s of ${signal}`));
                }, withinMs);
              });
              return Promise.race([exited, late]).finally(() => clearTimeout(timer));
            },
          });
        }
      }
    });
    proc.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`fc-async dev exited with ${code}: ${stderr.join('')}`));
    });
  });
}

/**
 * A sync InvokeFunction of `GET path` on `fn` (its FC 3.0 event as the body) through the control
 * plane, bounded at 15 s: how the official SDK calls a function with an HTTP trigger.
 */
export function invokeSync(controlUrl: string, fn: string, path: string): Promise<Response> {
  const event = {
    version: 'v1',
    rawPath: path,
    headers: {},
    queryParameters: {},
    body: '',
    isBase64Encoded: false,
    requestContext: { http: { method: 'GET', path } },
  };
  return fetch(new URL(`/2023-03-30/functions/${fn}/invocations`, controlUrl), {
    method: 'POST',
    body: JSON.stringify(event),
    signal: AbortSignal.timeout(15_000),
  });
}

/** Runs the CLI to completion (for the ways it refuses to start). */
export function runCli(
  args: string[],
  options: CliOptions = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  proc.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The official FC SDK client pointed at a control plane URL. */
export function sdk(control: string, credentials = { accessKeyId: 'local', accessKeySecret: 'local' }) {
  // Node's ESM gives the CommonJS module as the default export; vitest's interop gives its `default`.
  const Client = (typeof FC.default === 'function' ? FC.default : FC) as typeof FC.default;
  return new Client(
    new $OpenApiUtil.Config({
      ...credentials,
      endpoint: new URL(control).host,
      protocol: 'http',
      readTimeout: 10_000,
      connectTimeout: 10_000,
    }),
  );
}

/** Polls `probe` until it returns something other than `undefined`. */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('waitFor timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The SDK's thrown error, for assertions on `code` and `statusCode`. */
export async function sdkError(
  call: Promise<unknown>,
): Promise<{ code?: string; statusCode?: number; message: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code?: string; statusCode?: number; message: string };
  }
  throw new Error('expected the SDK call to fail');
}

/** Headless Chromium from apt (`/usr/bin/chromium`) with a fresh profile, for the dashboard tests. */
export function launchChromium(
  options: { httpCredentials?: { username: string; password: string } } = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'fc-async-chromium-')), {
    ...options,
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 800 },
  });
}

/**
 * Whether a process with this pid is running. A zombie is not: it has ended, and only its entry
 * waits for its parent, or init once that parent is gone, to reap it. A custom runtime killed with
 * its supervisor is one until init reaps it, which some inits do a second or two later (this
 * machine's did, 1 to 2 s after the kill); `kill(pid, 0)` alone counts it as running.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // No /proc (macOS): what kill() said.
  if (!existsSync('/proc/self/stat')) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command's name in parentheses, which may hold any character.
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false; // gone since kill()
  }
}

/**
 * A redis-server of one test on a free loopback port (or `options.port`), no persistence, with
 * `options.args` added (`--requirepass`). `cleanup` gets what stops it (resumed first, in case a
 * test froze it with SIGSTOP) and removes its folder.
 */
export async function redisServer(
  cleanup: (stop: () => Promise<void>) => void,
  options: { port?: number; args?: string[] } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const port = options.port ?? (await freeLoopbackPort());
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-redis-'));
  const args = [
    ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    ...(options.args ?? []),
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) if (line.includes('Ready to accept connections')) break;
  child.stdout?.resume();
  return { child, url: `redis://127.0.0.1:${port}` };
}

/**
 * A Redis Cluster of three masters on loopback (no replicas, no persistence), on `options.ports`
 * or free ones, with `options.password` if given: the 16384 slots split in three in port order, as
 * in direct connection mode, where a node answers the slots it owns and redirects the rest
 * (`MOVED`). Resolved once every node says the cluster is up and knows the others; `cleanup` gets
 * what stops the nodes. The URLs of its nodes (no credentials), in slot order. With `options.tls`,
 * TLS alone (no plain port), the cluster bus too, each node announcing the host name `localhost`
 * in the slot map, as ElastiCache's TLS nodes announce theirs; the URLs are `rediss://localhost:PORT`.
 */
export async function redisCluster(
  cleanup: (stop: () => Promise<void>) => void,
  options: { ports?: readonly number[]; password?: string; tls?: TestCertificate } = {},
): Promise<string[]> {
  const { Redis } = await import('ioredis');
  const nodes: { url: string; busPort: number }[] = [];
  const auth = options.password === undefined ? [] : ['--requirepass', options.password];
  const { tls } = options;
  for (let i = 0; i < 3; i++) {
    const busPort = await freeLoopbackPort();
    const args = ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', 'nodes.conf'];
    const port = options.ports?.[i] ?? (await freeLoopbackPort());
    const tlsArgs = tls
      ? [
          ...['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-auth-clients', 'no'],
          ...['--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca],
          ...['--cluster-announce-hostname', 'localhost', '--cluster-preferred-endpoint-type', 'hostname'],
        ]
      : [];
    await redisServer(cleanup, { port, args: [...args, ...auth, ...tlsArgs] });
    nodes.push({ url: tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`, busPort });
  }
  const admins = nodes.map(
    (node) =>
      new Redis(node.url, { password: options.password, ...(tls ? { tls: { ca: readFileSync(tls.ca) } } : {}) }),
  );
  try {
    for (const [i, node] of nodes.entries()) {
      if (i > 0) await admins[0]?.call('CLUSTER', 'MEET', '127.0.0.1', new URL(node.url).port, String(node.busPort));
    }
    for (const [i, admin] of admins.entries()) {
      const from = Math.floor((i * 16_384) / 3);
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', String(from), String(Math.floor(((i + 1) * 16_384) / 3) - 1));
    }
    await waitFor(async () => {
      const infos = await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'INFO') as Promise<string>));
      return infos.every((info) => info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3'))
        ? true
        : undefined;
    }, 20_000);
  } finally {
    for (const admin of admins) admin.disconnect();
  }
  return nodes.map((node) => node.url);
}

/** The files of a certificate for `localhost` alone (no IP address), and of the CA that signed it. */
export interface TestCertificate {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A CA and a certificate it signed for the host name `localhost` alone, made with `openssl` in a
 * temporary folder (`cleanup` gets what removes it): a client that connects to 127.0.0.1 rather
 * than to the name fails its check.
 */
export function localhostCertificate(cleanup: (remove: () => void) => void): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-tls-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const key = ['-newkey', 'rsa:2048', '-nodes'];
  openssl(
    ['req', '-x509', ...key, '-days', '1', '-subj', '/CN=fc-async test CA'].concat([
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.crt'),
    ]),
  );
  openssl(['req', ...key, '-subj', '/CN=localhost', '-keyout', file('server.key'), '-out', file('server.csr')]);
  writeFileSync(file('ext.cnf'), 'subjectAltName=DNS:localhost\n');
  openssl(
    ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key')].concat([
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file('ext.cnf'),
      '-out',
      file('server.crt'),
    ]),
  );
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') };
}

/** A free port on 127.0.0.1. */
function freeLoopbackPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
