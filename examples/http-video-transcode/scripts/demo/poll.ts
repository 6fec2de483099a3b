/**
 * Calls `check` every `intervalMs` until it gives something other than `undefined` or `false`,
 * and resolves that; resolves `undefined` once `timeoutMs` have passed without it.
 *
 * @example
 * ```ts
 * const pids = await poll(async () => (await ffmpegProcesses('long.webm'))?.length || undefined, { timeoutMs: 30_000 });
 * ```
 */
export async function poll<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<Exclude<T, false | undefined> | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
