import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';

/** Options of {@link startEmulator}. */
export interface EmulatorOptions {
  /** Folder holding the s.yaml. */
  cwd: string;
  /** @default 's.yaml' */
  config?: string;
  /** The CLI script run with node. @default FC_ASYNC_CLI, else the `fc-async` bin of `@fc-async/local` */
  cli?: string;
  /** Where the HTTP trigger of `transcode` answers, unless the CLI prints a URL for it. @default FC_ASYNC_TRIGGER_URL or http://127.0.0.1:9000/ */
  triggerUrl?: string;
  /** `host:port` of the FC API (task endpoints). @default FC_ASYNC_CONTROL_ENDPOINT or 127.0.0.1:9001 */
  controlEndpoint?: string;
  /** @default 60000 */
  readyTimeoutMs?: number;
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
  triggerUrl: string;
  controlEndpoint: string;
  /** Everything the CLI printed, line by line. */
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

/**
 * Starts `fc-async dev --config <config>` and resolves once the HTTP trigger and the FC API both
 * accept connections. Rejects, with the CLI's last lines, if it exits first or is not ready in
 * time. A line the CLI prints naming `transcode` with an http URL sets `triggerUrl`.
 *
 * @example
 * ```ts
 * const { triggerUrl, controlEndpoint, stop } = await startEmulator({ cwd: process.cwd() });
 * ```
 */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const env = options.env ?? process.env;
  let triggerUrl = options.triggerUrl ?? env.FC_ASYNC_TRIGGER_URL ?? 'http://127.0.0.1:9000/';
  const controlEndpoint = options.controlEndpoint ?? env.FC_ASYNC_CONTROL_ENDPOINT ?? '127.0.0.1:9001';
  const cli = options.cli ?? (env.FC_ASYNC_CLI || localCli(options.cwd));
  const child = spawn(process.execPath, [cli, 'dev', '--config', options.config ?? 's.yaml'], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      const url = /transcode\b.*?(https?:\/\/[^\s"']+)/.exec(line)?.[1];
      if (url && !options.triggerUrl && !env.FC_ASYNC_TRIGGER_URL) triggerUrl = url;
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let early = false;
  void exited.then(() => {
    early = true;
  });
  for (;;) {
    if (early) {
      throw new Error(`fc-async dev exited (${child.exitCode ?? child.signalCode}):\n${output.slice(-20).join('\n')}`);
    }
    const trigger = new URL(triggerUrl);
    const [host = '127.0.0.1', port = '9001'] = controlEndpoint.split(':');
    if ((await canConnect(trigger.hostname, Number(trigger.port || 80))) && (await canConnect(host, Number(port)))) {
      return { child, triggerUrl, controlEndpoint, output, stop };
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`fc-async dev was not ready in time:\n${output.slice(-20).join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
