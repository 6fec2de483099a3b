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
