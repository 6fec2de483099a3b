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
  if (CROSS_SLOT.test((error as { message?: unknown } | null)?.message as string)) {
    // No Retry-After: the same keys are refused however often they are sent.
    return new FcAsyncError(
      'RedisUnavailable',
      'Redis runs in cluster mode and refused the task, its keys hashing to different slots: make the prefix a hash tag, such as `{fc-async}`',
      { statusCode: 503, cause: error },
    );
  }
  const refused = scriptRefused(error, "the task's script");
  if (refused) return refused;
  if (timedOut(error)) {
    // Sent, not answered (Redis frozen or overloaded): Redis may still store it when it wakes.
    return new FcAsyncError(
      'RedisUnavailable',
      'Redis did not answer in time; retry later (a retry with the same task id answers 409 if Redis took the task after all)',
      { statusCode: 503, cause: error, retryAfterSeconds: 1 },
    );
  }
  return new FcAsyncError('RedisUnavailable', 'Redis did not take the task; it was not accepted, retry later', {
    statusCode: 503,
    cause: error,
    retryAfterSeconds: 1,
  });
}

/**
 * A cluster's refusal of keys in several slots, when the start did not see a cluster (see
 * refuseClusterWithoutTag in index.ts: `INFO` refused, or a proxy in front): Redis Cluster's
 * `CROSSSLOT`, and the `ERR eval/evalsha command keys must in same slot` of the proxy of
 * ApsaraDB for Redis / Tair cluster instances.
 */
const CROSS_SLOT = /^CROSSSLOT |keys must (?:be )?in same slot/;

/**
 * The refusal of a script by the proxy of ApsaraDB for Redis / Tair cluster instances when its Lua
 * check is on (`script_check_enable` 1, the default): `ERR bad lua script for redis cluster, all
 * the keys that the script uses should be passed using the KEYS array` (later proxies add `, and
 * KEYS should not be in expression`). It refuses a script that builds a key or walks its keys in a
 * loop, as BullMQ's and fc-async's do, so no accept gets through until the check is off.
 */
const SCRIPT_CHECK = /bad lua script for redis cluster/i;

/**
 * The 503 for `error` when it is the proxy's Lua check refusing `script` (see `SCRIPT_CHECK`), else
 * `undefined`. No Retry-After: the proxy refuses the script itself, whatever its keys.
 */
function scriptRefused(error: unknown, script: string): FcAsyncError | undefined {
  if (!SCRIPT_CHECK.test((error as { message?: unknown } | null)?.message as string)) return undefined;
  return new FcAsyncError(
    'RedisUnavailable',
    `Redis refused ${script}: the proxy of an ApsaraDB for Redis / Tair cluster instance checks that a script uses only the keys passed to it (\`script_check_enable\`, on by default), which BullMQ's and fc-async's scripts do not: set \`script_check_enable\` to 0 on the instance`,
    { statusCode: 503, cause: error },
  );
}

/**
 * Redis's answer to `command`; a read or a stop Redis did not answer (frozen past
 * `commandTimeoutMs`, or down past the connection's retries) rejects as a 503 `RedisUnavailable`,
 * so the task API answers it as such rather than as an internal error, as it does a script refused
 * by a cluster proxy's Lua check (a listing, whose script walks the index). Any other error is left
 * as it is.
 */
export function answerOf<T>(command: Promise<T>): Promise<T> {
  return command.catch((error: unknown) => {
    const refused = scriptRefused(error, "fc-async's script");
    if (refused) throw refused;
    if (!timedOut(error) && (error as { name?: unknown } | null)?.name !== 'MaxRetriesPerRequestError') throw error;
    throw new FcAsyncError('RedisUnavailable', 'Redis did not answer in time; retry later', {
      statusCode: 503,
      cause: error,
      retryAfterSeconds: 1,
    });
  });
}

/** ioredis's error for a command sent but not answered within its `commandTimeout`. */
export function timedOut(error: unknown): boolean {
  return (error as { message?: unknown } | null)?.message === 'Command timed out';
}

/** The task API's answer once the store is closed, as the other stores give it. */
export function storeClosed(): FcAsyncError {
  return new FcAsyncError('ServiceUnavailable', 'The function is shutting down: its task store is closed', {
    statusCode: 503,
  });
}
