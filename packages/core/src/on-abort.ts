/** The callers waiting on each signal (see {@link onAbort}). */
const waiting = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` once when `signal` aborts; the returned function takes it back. Every caller of one
 * signal shares one listener: Node's `EventTarget` walks a signal's whole listener list on each
 * add and remove, so thousands of destination calls waiting on the engine's one shutdown signal
 * cost time quadratic in their number (a close() of 20,000 tasks spent seconds there), where a
 * `Set` costs the same for each. A signal already aborted never calls `fn`, as `addEventListener`.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) return noop;
  let callers = waiting.get(signal);
  if (callers === undefined) {
    const set = new Set<() => void>();
    callers = set;
    waiting.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        waiting.delete(signal);
        for (const call of set) call();
      },
      { once: true },
    );
  }
  const set = callers;
  set.add(fn);
  return () => {
    set.delete(fn);
  };
}

function noop(): void {}
