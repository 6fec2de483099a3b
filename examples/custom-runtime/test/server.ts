import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The built server, started the way FC starts a custom runtime: its `bootstrap`, FC's variables. */
export interface RunningServer {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote, stdout and stderr. */
  output: string[];
  /** Resolves the exit code. */
  exited: Promise<number | null>;
}

/** A port nobody listens on now, as FC hands one out in FC_CUSTOM_LISTEN_PORT. */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

export async function startServer(codeDir: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(join(codeDir, 'bootstrap'), [], {
    cwd: codeDir,
    env: { PATH: process.env.PATH, FC_CUSTOM_LISTEN_PORT: String(port), LISTEN_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    listening = resolve;
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      if (line.includes('"message":"listening"')) listening();
    });
  }
  const failed = exited.then((code) => {
    throw new Error(`the server exited (${code}) before listening:\n${output.join('\n')}`);
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not listen within 15 s:\n${output.join('\n')}`)), 15_000);
  });
  try {
    await Promise.race([ready, failed, late]);
  } finally {
    clearTimeout(timer);
    failed.catch(() => {});
  }
  return { url: `http://127.0.0.1:${port}`, child, output, exited };
}
