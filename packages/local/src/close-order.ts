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
 * What a destination function gets at least to run the records that reach it as its senders
 * close (those of tasks stopped at their deadline come last), however long they took.
 */
const RECORD_GRACE_MS = 5_000;

/**
 * Closes the functions' handlers so that a destination function still takes records while the
 * functions that send them drain: it closes after them (functions that send to one another close
 * together). One deadline covers every wave, except that a wave of destination functions gets at
 * least `RECORD_GRACE_MS` (or `timeoutMs`, when less) for the records of tasks that ended last.
 *
 * @example
 * ```ts
 * await closeInDestinationOrder(functions, 10_000); // `jobs` drains first, then `dest-succ`
 * ```
 */
export async function closeInDestinationOrder(functions: readonly LocalFunction[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const grace = Math.min(timeoutMs, RECORD_GRACE_MS);
  let open = [...functions];
  let first = true;
  while (open.length > 0) {
    const targets = new Set(open.flatMap(targetsOf));
    const senders = open.filter((f) => !targets.has(f.spec.name));
    // What is left sends records around a cycle: it all closes at once.
    const wave = senders.length > 0 ? senders : open;
    const left = first ? timeoutMs : Math.max(grace, deadline - Date.now());
    first = false;
    await Promise.all(wave.map((f) => f.handler.close({ timeoutMs: left }).catch(() => undefined)));
    open = open.filter((f) => !wave.includes(f));
  }
}
