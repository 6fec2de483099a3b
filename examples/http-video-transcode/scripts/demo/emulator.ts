import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { type AccessKey, localAccessKey } from './tasks.js';

/** Options of {@link startEmulator}. */
export interface EmulatorOptions {
  /** Folder holding the s.yaml. */
  cwd: string;
  /** @default 's.yaml' */
  config?: string;
  /** The CLI script run with node. @default FC_ASYNC_CLI, else the `fc-async` bin of `@fc-async/local` */
  cli?: string;
  /** The HTTP function to report the URL of. @default 'transcode' */
  function?: string;
  /** HTTP trigger port. @default 0 (a free one) */
  port?: number;
  /** FC API (control plane) port. @default 0 (a free one) */
  controlPort?: number;
  /** The key the FC API checks the SDK's signatures against. @default localAccessKey() */
  accessKey?: AccessKey;
  /** @default 60000 */
  readyTimeoutMs?: number;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
}

/**
 * A running `fc-async dev`.
 *
 * @example
 * ```ts
 * const emulator = await startEmulator({ cwd: exampleDir });
 * await fetch(emulator.triggerUrl);
 * await emulator.stop();
 * ```
 */
export interface Emulator {
  child: ChildProcess;
  /** The URL of the function's HTTP trigger, e.g. `http://127.0.0.1:41234/`. */
  triggerUrl: string;
  /** `host:port` of the FC API, the endpoint the SDK takes. */
  controlEndpoint: string;
  /** Everything the CLI printed, line by line (JSON lines, `--log-format json`). */
  output: string[];
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * The `fc-async` CLI script of the `@fc-async/local` installed for the folder `from`.
 *
 * @example
 * ```ts
 * spawn(process.execPath, [localCli(exampleDir), 'dev', '--config', 's.yaml']);
 * ```
 */
export function localCli(from: string): string {
  const require = createRequire(join(from, 'package.json'));
  const manifest = require.resolve('@fc-async/local/package.json');
  const bin = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> }).bin?.['fc-async'];
  if (!bin) throw new Error('@fc-async/local has no `fc-async` bin');
  return join(dirname(manifest), bin);
}

/** What `fc-async dev --log-format json` prints once both ports listen. */
interface ReadyLine {
  kind: 'ready';
  control: string;
  functions: { name: string; url?: string }[];
}

function readyLine(line: string): ReadyLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as Partial<ReadyLine>;
    return value.kind === 'ready' && typeof value.control === 'string' && Array.isArray(value.functions)
      ? (value as ReadyLine)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts `fc-async dev --config <config> --log-format json` on the given ports (free ones by
 * default), with `accessKey` as the FC API's key so that the SDK's signatures are checked, and
 * resolves with the URLs from its `ready` line. Rejects, with the CLI's last lines, if it exits
 * first, is not ready in time, or serves no HTTP function named `function`.
 *
 * @example
 * ```ts
 * const { triggerUrl, controlEndpoint, stop } = await startEmulator({ cwd: process.cwd() });
 * ```
 */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const env = options.env ?? process.env;
  const key = options.accessKey ?? localAccessKey(env);
  const cli = options.cli ?? (env.FC_ASYNC_CLI || localCli(options.cwd));
  const args = [cli, 'dev', '--config', options.config ?? 's.yaml'];
  args.push('--port', String(options.port ?? 0), '--control-port', String(options.controlPort ?? 0));
  const child = spawn(process.execPath, [...args, '--log-format', 'json'], {
    cwd: options.cwd,
    env: { ...env, FC_ASYNC_ACCESS_KEY_ID: key.accessKeyId, FC_ASYNC_ACCESS_KEY_SECRET: key.accessKeySecret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const last = () => output.slice(-20).join('\n');

  const ready = new Promise<ReadyLine>((resolve) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
        if (!line.trim()) return;
        output.push(line);
        const info = readyLine(line);
        if (info) resolve(info);
      });
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready,
    exited.then(() => 'exited' as const),
    new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), options.readyTimeoutMs ?? 60_000);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'exited') throw new Error(`fc-async dev exited (${child.exitCode ?? child.signalCode}):\n${last()}`);
  if (outcome === 'late') {
    await stop();
    throw new Error(`fc-async dev was not ready in time:\n${last()}`);
  }
  const name = options.function ?? 'transcode';
  const triggerUrl = outcome.functions.find((f) => f.name === name)?.url;
  if (!triggerUrl) {
    await stop();
    throw new Error(`fc-async dev serves no HTTP function ${name}:\n${last()}`);
  }
  return { child, triggerUrl, controlEndpoint: new URL(outcome.control).host, output, stop };
}
