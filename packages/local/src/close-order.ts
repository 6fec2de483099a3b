import { parseDestinationArn } from './destinations.js';
import type { LocalFunction } from './function.js';

/** The other functions of this emulator that `fn`'s destinations (as now configured) name. */
function targetsOf(fn: LocalFunction): string[] {
  const names: string[] = [];
  for (const side of ['onSuccess', 'onFailure'] as const) {
    const arn = fn.asyncConfig?.destinationConfig?.[side]?.destination;
    const target = arn ? parseDestinationArn(arn) : undefined;
    if (target?.kind === 'fc' && target.functionName !== fn.spec.name) names.push(target.functionName);
  }
  return names;
}

/**
 * Closes the functions' handlers so that a destination function still takes records while the
 * functions that send them drain: it closes after them (functions that send to one another close
 * together). One deadline covers every wave, so the whole shutdown stays within `timeoutMs`.
 *
 * @example
 * ```ts
 * await closeInDestinationOrder(functions, 10_000); // `jobs` drains first, then `dest-succ`
 * ```
 */
export async function closeInDestinationOrder(functions: readonly LocalFunction[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let open = [...functions];
  while (open.length > 0) {
    const targets = new Set(open.flatMap(targetsOf));
    const senders = open.filter((f) => !targets.has(f.spec.name));
    // What is left sends records around a cycle: it all closes at once.
    const wave = senders.length > 0 ? senders : open;
    const left = Math.max(0, deadline - Date.now());
    await Promise.all(wave.map((f) => f.handler.close({ timeoutMs: left }).catch(() => undefined)));
    open = open.filter((f) => !wave.includes(f));
  }
}
