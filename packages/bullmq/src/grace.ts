import { FcAsyncError, isFcAsyncError } from '@fc-async/core';

/** How long closing waits for BullMQ's worker before leaving it (Redis unreachable). */
export const CLOSE_GRACE_MS = 3000;

/** Resolves `true` when `work` settles within `ms`, else `false` (and leaves it running). */
export function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = work.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Why Redis did not take an accepted task (unreachable past the connection's retries, out of
 * memory, read-only): a 503 `RedisUnavailable`, so the request is answered as not accepted
 * rather than with a bare 500. The Redis error stays in `cause`, for logs.
 */
export function notAccepted(error: unknown): unknown {
  if (isFcAsyncError(error)) return error;
  return new FcAsyncError('RedisUnavailable', 'Redis did not take the task; it was not accepted, retry later', {
    statusCode: 503,
    cause: error,
  });
}
