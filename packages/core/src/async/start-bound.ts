import { FcAsyncError } from '../errors.js';
import type { QueueDriver, TaskStore } from './backend.js';

/**
 * How long a backend's `create()` may take when the backend names no bound of its own
 * (`AsyncBackend.startTimeoutMs`): above `bullmq()`'s own `connectTimeoutMs` (10 s) and the
 * emulator's wait for its store (15 s), so that those say what is wrong first.
 */
export const BACKEND_START_MS = 30_000;

/** What a backend's `create()` makes. */
export type Made = { store: TaskStore; queue: QueueDriver };

/**
 * `created`, a `create()` just called, bounded: past `ms` without settling, the start fails with a
 * 503 `BackendUnavailable` (`Retry-After: 1`), as one that rejects does (logged, answered, tried
 * again on a later demand). What it makes after that goes to `late`, which closes it: that try
 * failed, and the next one opens its own. `Infinity`: not bounded. The timer does not keep the
 * process alive by itself.
 */
export function startWithin(created: Promise<Made>, ms: number, late: (made: Made) => void): Promise<Made> {
  if (ms === Number.POSITIVE_INFINITY) return created;
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(
        new FcAsyncError('BackendUnavailable', `The async backend did not start within ${ms} ms`, {
          statusCode: 503,
          retryAfterSeconds: 1,
        }),
      );
    }, ms);
    timer.unref();
    created.then(
      (made) => {
        clearTimeout(timer);
        if (expired) late(made);
        else resolve(made);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (!expired) reject(error);
      },
    );
  });
}
