const LATE = Symbol('late');

/** `promise`, or what `late()` gives when it has not settled within `ms` (it is left running). */
export async function within<T, U>(promise: Promise<T>, ms: number, late: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), ms);
  });
  try {
    const result = await Promise.race([promise, timeout]);
    return result === LATE ? late() : (result as T);
  } finally {
    clearTimeout(timer);
  }
}
