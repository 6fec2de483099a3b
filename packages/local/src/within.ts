import { MAX_TIMER_MS } from '@fc-async/core';

const LATE = Symbol('late');

/** `promise`, or what `late()` gives when it has not settled within `ms` (it is left running). */
export async function within<T, U>(promise: Promise<T>, ms: number, late: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof LATE>((resolve) => {
    // Past a timer's longest (about 24.8 days) Node would fire it at once: that long is never reached.
    timer = setTimeout(() => resolve(LATE), Math.min(ms, MAX_TIMER_MS));
  });
  try {
    const result = await Promise.race([promise, timeout]);
    return result === LATE ? late() : (result as T);
  } finally {
    clearTimeout(timer);
  }
}
