import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Resolves once `check()` returns something other than `undefined`; rejects after `timeoutMs`. */
export async function until<T>(check: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What {@link within} resolves to when the work did not settle in time. */
export const PENDING = 'still waiting';

/** `work`'s value, or {@link PENDING} once `ms` have passed first: a hang fails a test instead of stalling it. */
export function within<T>(work: Promise<T>, ms: number): Promise<T | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<typeof PENDING>((resolve) => {
    timer = setTimeout(() => resolve(PENDING), ms);
  });
  return Promise.race([work, bound]).finally(() => clearTimeout(timer));
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
