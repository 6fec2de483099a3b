import type { Logger } from '../logger.js';

/**
 * Work to finish before the instance goes away, e.g. flushing spans. May return a promise.
 *
 * @example
 * ```ts
 * declare const provider: { forceFlush(): Promise<void> };
 * const flush: PreStopHook = () => provider.forceFlush();
 * ```
 */
export type PreStopHook = () => unknown;

const hooks = new Set<PreStopHook>();

/**
 * Registers work for the end of an instance's life: FC's `GET /pre-stop`, FC 2.0's
 * `GET /pre-freeze`, and the graceful shutdown on SIGTERM run every hook (after the async queue
 * drained), each bounded by what is left of the budget; a hook that throws is logged, never
 * fatal. Tracing registers its span flush here. Returns the function that unregisters it.
 *
 * @example
 * ```ts
 * declare const tracerProvider: { forceFlush(): Promise<void> };
 * const off = addPreStopHook(() => tracerProvider.forceFlush());
 * // later, if the provider is replaced:
 * off();
 * ```
 */
export function addPreStopHook(hook: PreStopHook): () => void {
  if (typeof hook !== 'function') {
    throw new TypeError(`Expected \`hook\` to be a function, got \`${typeof hook}\``);
  }
  hooks.add(hook);
  return () => {
    hooks.delete(hook);
  };
}

/** Runs the registered hooks and `extra` at once, until they settle or `timeoutMs` passes. */
export async function runPreStopHooks(
  logger: Logger,
  timeoutMs: number,
  extra: readonly (PreStopHook | undefined)[] = [],
): Promise<void> {
  const all = [...hooks, ...extra].filter((h): h is PreStopHook => h !== undefined);
  if (all.length === 0) return;
  const runs = all.map(async (hook) => {
    try {
      await hook();
    } catch (error) {
      logger.error('pre-stop hook failed', { error });
    }
  });
  await within(Promise.all(runs), timeoutMs, () => logger.warn('pre-stop hooks did not finish in time', { timeoutMs }));
}

/** The longest delay Node's timers keep (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Waits for `work`, at most `ms` (past {@link MAX_TIMER_MS}, for as long as it takes); calls `onTimeout` when the time ran out first. */
export async function within(work: Promise<unknown>, ms: number, onTimeout?: () => void): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    // Node fires a delay past 2^31 - 1 ms (Infinity included) after 1 ms: past it, no timer is needed.
    if (ms <= MAX_TIMER_MS) timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  const done = await Promise.race([
    work.then(
      () => true as const,
      () => true as const,
    ),
    deadline,
  ]);
  clearTimeout(timer);
  if (!done) onTimeout?.();
  return done;
}
