import { type FcAsyncError, isFcAsyncError } from './errors.js';
import type { Logger } from './logger.js';

// Failures and refusals that come in bursts (a Redis outage refuses every request and fails every
// task's bookkeeping alike) are logged as the first of each kind, whole, then once how many more
// followed within 10 s: not one line (with a stack) per request or task.

/** How often a logger is told that async requests are being refused (a burst refuses thousands). */
const BURST_LOG_MS = 10_000;

/** Refusals that come in bursts, logged as the first of one and a count 10 s later: what each line says. */
export interface Burst {
  readonly first: string;
  readonly rest: string;
  /** A failure under fc-async: its first line is an error, with the error whole (its cause). */
  readonly failure?: boolean;
}
/** 429: `maxQueuedTasks` (tasks to run and deliveries under way) or `maxDeliveryBytes` reached; the reason says which. */
export const THROTTLED: Burst = {
  first: 'async requests refused with 429 ResourceThrottled',
  rest: 'async requests refused with 429 in the last 10 s',
};
/** 503 while closing: a balancer still routing to an instance in its pre-stop. */
export const CLOSING: Burst = {
  first: 'requests refused with 503: the function is shutting down',
  rest: 'requests refused with 503 (shutting down) in the last 10 s',
};

/** 503 because what is under the engine failed, one kind per code (`SqliteWriteFailed`, `RedisUnavailable`...). */
const UNAVAILABLE = new Map<string, Burst>();
export function unavailableBurst(code: string): Burst {
  let burst = UNAVAILABLE.get(code);
  if (!burst) {
    burst = {
      first: `requests refused with 503 ${code}`,
      rest: `requests refused with 503 ${code} in the last 10 s`,
      failure: true,
    };
    UNAVAILABLE.set(code, burst);
  }
  return burst;
}

/** A burst told in the last 10 s: how many more were refused since, and the timer that tells them. */
interface OpenBurst {
  refused: number;
  code: string;
  timer: NodeJS.Timeout;
}

/** Per logger and kind of burst, the bursts told in the last 10 s. */
const bursts = new WeakMap<Logger, Map<Burst, OpenBurst>>();

/** Logs how many more a burst refused since its first line, and ends it. */
function endBurst(logger: Logger, open: Map<Burst, OpenBurst>, burst: Burst): void {
  const window = open.get(burst);
  if (!window) return;
  clearTimeout(window.timer);
  open.delete(burst);
  if (window.refused > 0) logger.warn(burst.rest, { code: window.code, refused: window.refused });
}

/**
 * Logs now the counts of a logger's bursts still open: a close() (which refuses with 503 while it
 * runs) calls it as it ends, as the process may exit before the 10 s are up.
 */
export function flushBursts(logger: Logger): void {
  const open = bursts.get(logger);
  if (!open) return;
  for (const burst of [...open.keys()]) endBurst(logger, open, burst);
}

/**
 * Logs the first refusal of a burst, then once how many more followed within 10 s: not one line
 * per request (8,000 refusals wrote 7,892 lines), and no count lost. Per logger: each function of
 * the emulator has its own.
 */
export function noteBurst(
  logger: Logger,
  error: FcAsyncError,
  burst: Burst,
  fields: Record<string, unknown> = {},
): void {
  let open = bursts.get(logger);
  const window = open?.get(burst);
  if (window) {
    window.refused++;
    return;
  }
  if (burst.failure) logger.error(burst.first, { ...fields, code: error.code, error });
  else logger.warn(burst.first, { ...fields, code: error.code, reason: error.message });
  if (!open) {
    open = new Map();
    bursts.set(logger, open);
  }
  const windows = open;
  const timer = setTimeout(() => endBurst(logger, windows, burst), BURST_LOG_MS);
  timer.unref();
  open.set(burst, { refused: 0, code: error.code, timer });
}

/** A task's bookkeeping refused by its store or queue, one kind per code (`RedisUnavailable`...). */
const BOOKKEEPING = new Map<string, Burst>();

/**
 * Logs a task's bookkeeping that its store or queue refused: a 503 (the store away: every running
 * task fails alike) as a burst, its first line whole with the task id; anything else a line each.
 */
export function noteBookkeepingFailure(logger: Logger, taskId: string, error: unknown): void {
  if (!isFcAsyncError(error) || error.statusCode !== 503) {
    logger.error('async task bookkeeping failed', { taskId, error });
    return;
  }
  let burst = BOOKKEEPING.get(error.code);
  if (!burst) {
    burst = {
      first: 'async task bookkeeping failed',
      rest: `async task bookkeeping failed for more tasks (503 ${error.code}) in the last 10 s; each is tried again`,
      failure: true,
    };
    BOOKKEEPING.set(error.code, burst);
  }
  noteBurst(logger, error, burst, { taskId });
}
