import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-sqlite-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves once `check()` is true; rejects after `timeoutMs`, naming `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The first line `child` prints on stdout (its `{"port":N}` once listening); rejects at once,
 * naming how it ended, when the child exits before it, rather than waiting for the test's timeout.
 */
export async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const started = once(lines, 'line') as Promise<[string]>;
  const died = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`The child process exited before it printed its first line (${signal ?? code})`);
  });
  died.catch(() => undefined);
  const [line] = await Promise.race([started, died]);
  return line;
}
