import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

/** A Node child process whose output a test waits on. */
export interface Child {
  /** Resolves with the first match of `pattern` in stdout; rejects if the child exits first. */
  line(pattern: RegExp): Promise<RegExpMatchArray>;
  /** The exit code (`null` when a signal ended it). */
  exited: Promise<number | null>;
  stdout(): string;
  kill(signal: NodeJS.Signals): void;
}

/** Starts `node --import tsx <script> ...args` in `cwd`, stdout and stderr kept. */
export function spawnTsx(script: string, args: string[], cwd: string): Child {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(
    process.execPath,
    ['--import', 'tsx', script, ...args],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    exited,
    stdout: () => out,
    kill: (signal) => void child.kill(signal),
    line(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (!m) return false;
          child.stdout.off('data', check);
          resolve(m);
          return true;
        };
        if (check()) return;
        child.stdout.on('data', check);
        exited.then((code) => {
          if (!check()) reject(new Error(`The child exited (${code}) before printing ${pattern}:\n${out}\n${err}`));
        });
      });
    },
  };
}
