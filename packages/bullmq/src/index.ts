import { type AsyncBackend, FcAsyncError, type Logger, MAX_TIMER_MS } from '@fc-async/core';
import { Cluster, ReplyError } from 'ioredis';
import { connect, connectSubscriber, type RedisClient } from './connection.js';
import { corkEachTurn } from './cork.js';
import { answerOf, settlesWithin } from './grace.js';
import { keysOf } from './keys.js';
import { type BullmqBackendOptions, hashTagOf, resolveBullmqOptions } from './options.js';
import { oncePerOutage } from './outage.js';
import { Pruner } from './prune.js';
import { BullmqQueueDriver } from './queue.js';
import { RedisTaskStore } from './store.js';

export type { BullmqBackendOptions, BullmqClusterConnection } from './options.js';

/**
 * The distributed backend: one queue (BullMQ) and one task list (Redis) for every instance of a
 * function, e.g. containers behind a load balancer. Any instance accepts requests and answers
 * `tasks.get / list / stop` for every task; instances with `worker` run them. A task whose
 * instance dies is taken over by another once its lock expires (`lockDurationMs`), the cut
 * attempt counted; a stop reaches the instance running the task. An instance whose event loop
 * stays blocked past `lockDurationMs` may see its task run again elsewhere (at least once), never lost.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createHandler } from '@fc-async/express';
 * import { bullmq } from '@fc-async/bullmq';
 *
 * const app = express();
 * export const handler = createHandler(app, {
 *   async: { backend: bullmq({ connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }) },
 * });
 * ```
 */
export function bullmq(options: BullmqBackendOptions): AsyncBackend {
  const resolved = resolveBullmqOptions(options);
  return {
    name: 'bullmq',
    persistent: true,
    // The engine's bound on create() leaves room for its own: the wait for Redis, then a few
    // commands (the stop channel's subscribe among them), each within commandTimeoutMs.
    startTimeoutMs: Math.min(resolved.connectTimeoutMs + 4 * resolved.commandTimeoutMs, MAX_TIMER_MS),
    async create({ concurrency, logger }) {
      const redis = connect(resolved.connection, resolved.commandTimeoutMs);
      // The store resubscribes after each reconnection itself, handling a refusal; ioredis's own
      // resubscribe does not, and a SUBSCRIBE refused then (closed again, timed out, an ACL) was
      // an unhandled rejection, which ends the process by default.
      const subscriber = connectSubscriber(resolved.connection, redis, resolved.commandTimeoutMs);
      reportErrors(redis, logger);
      reportErrors(subscriber, logger);
      try {
        await answering([redis, subscriber], resolved.connectTimeoutMs);
        await refuseClusterWithoutTag(redis, resolved.prefix);
        corkEachTurn(redis);
        const keys = keysOf(resolved.prefix);
        const store = new RedisTaskStore(redis, subscriber, keys, resolved.worker, resolved.lockDurationMs);
        await store.listen();
        const pruner = new Pruner(redis, keys, resolved, logger, (ids) => store.forget(ids));
        const queue = new BullmqQueueDriver(
          redis,
          resolved,
          concurrency,
          logger,
          (taskId) => store.lastSeen(taskId),
          () => redis.disconnectCopies(),
        );
        store.onClose = () => pruner.stop();
        store.logger = logger;
        return { store, queue };
      } catch (error) {
        redis.disconnect();
        subscriber.disconnect();
        throw error;
      }
    },
  };
}

/**
 * Resolves once every connection is ready and answers a PING, waiting up to `ms` for Redis while
 * the connections reconnect: only `connectTimeoutMs` bounds the start, not a command's
 * `commandTimeoutMs` nor its retry limit (a PING sent at once would fail after either). Rejects
 * with a 503 `RedisUnavailable` that says how long it waited, the last connection error as `cause`.
 */
async function answering(connections: readonly RedisClient[], ms: number): Promise<void> {
  const started = performance.now();
  let lastError: unknown;
  let refusedCredentials: ((error: unknown) => void) | undefined;
  const refused = new Promise<never>((_resolve, reject) => {
    refusedCredentials = reject;
  });
  refused.catch(() => undefined);
  const remember = (error: unknown) => {
    lastError = error;
    // Wrong credentials do not get better by waiting: say so now rather than after connectTimeoutMs.
    if (AUTH_REFUSED.test((error as { message?: unknown } | null)?.message as string)) refusedCredentials?.(error);
  };
  const stopRemembering = connections.map((connection) => onErrors(connection, remember));
  try {
    const answered = Promise.race([
      refused,
      Promise.all(connections.map(whenReady)).then(() => Promise.all(connections.map((c) => c.ping()))),
    ]);
    if (!(await settlesWithin(answered, ms))) throw unavailable(ms, lastError);
    await answered.catch((error: unknown) => {
      // Redis went away again, or this connection stopped reconnecting: it waited this long.
      throw unavailable(Math.round(performance.now() - started), error);
    });
  } finally {
    for (const stop of stopRemembering) stop();
  }
}

/**
 * Redis's answers that waiting does not change: credentials it does not take (`AUTH` with a wrong
 * password, or none where one is needed), a database number past its `databases` or other than 0
 * on a Redis Cluster, which has no other (ioredis would carry on in db 0), and, to a cluster
 * client (`connection.cluster`), a Redis that is no cluster (its slot map asked for in vain).
 */
const AUTH_REFUSED =
  /^(WRONGPASS|NOAUTH|ERR invalid password|ERR AUTH|ERR DB index is out of range|ERR SELECT is not allowed in cluster mode|ERR This instance has cluster support disabled)/;

function unavailable(waitedMs: number, cause: unknown): FcAsyncError {
  if (AUTH_REFUSED.test((cause as { message?: unknown } | null)?.message as string)) {
    // No Retry-After: trying again soon does not make the credentials right.
    const message = (cause as Error).message;
    if (message.startsWith('ERR This instance has cluster support disabled')) {
      return new FcAsyncError(
        'RedisUnavailable',
        'Redis does not run in cluster mode: give its URL or options as `connection`, not in `connection.cluster`',
        { statusCode: 503, cause },
      );
    }
    const what = /^ERR (DB|SELECT)/.test(message) ? 'database number' : 'credentials';
    return new FcAsyncError('RedisUnavailable', `Redis refused the ${what} of the connection`, {
      statusCode: 503,
      cause,
    });
  }
  return new FcAsyncError('RedisUnavailable', `Redis did not answer within ${waitedMs} ms`, {
    statusCode: 503,
    cause,
    retryAfterSeconds: 1,
  });
}

/**
 * Fails the start on a Redis Cluster (`INFO` says `cluster_enabled:1`) when the prefix has no hash
 * tag: its keys hash to many slots, and a cluster refuses every script and command whose keys
 * span slots (`CROSSSLOT`), so that no task could be accepted, however often it was tried. A
 * `RedisUnavailable` without `Retry-After`, as for refused credentials: waiting does not help. A
 * Redis that refuses `INFO` (a proxy, an ACL) is not judged here; its refusal of the first accept
 * says the same (see notAccepted).
 */
async function refuseClusterWithoutTag(redis: RedisClient, prefix: string): Promise<void> {
  if (hashTagOf(prefix) !== undefined) return;
  const info = await answerOf(redis.info('cluster')).catch((error: unknown) => {
    if (error instanceof ReplyError) return '';
    throw error;
  });
  if (!/^cluster_enabled:1\s*$/m.test(info)) return;
  throw new FcAsyncError(
    'RedisUnavailable',
    `Redis runs in cluster mode, where the keys of prefix \`${prefix}\` hash to different slots and every accept would be refused: make the prefix a hash tag, such as \`{${prefix}}\``,
    { statusCode: 503 },
  );
}

/** Resolves when `redis` is ready (ioredis's ready check passed); rejects if it ends first (no more reconnects). */
function whenReady(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const ready = () => {
      redis.off('end', ended);
      resolve();
    };
    const ended = () => {
      redis.off('ready', ready);
      reject(new Error('The connection to Redis ended and does not reconnect'));
    };
    redis.once('ready', ready);
    redis.once('end', ended);
  });
}

/** ioredis emits an error per failed reconnect: log each kind once until the connection is back. */
function reportErrors(redis: RedisClient, logger: Logger): void {
  // The reason only: a refused connection's stack is Node's socket code, the same every time.
  const report = oncePerOutage(redis, (error) =>
    logger.warn('redis connection error', { reason: error.message, code: (error as { code?: unknown }).code }),
  );
  onErrors(redis, report);
}

/**
 * Listens to the errors `redis` tells; returns what stops listening. A cluster tells a node's own
 * (a refused connection, `WRONGPASS`) as `node error`, and its `error` only once no node gave it
 * the slot map.
 */
function onErrors(redis: RedisClient, listener: (error: Error) => void): () => void {
  const events = redis instanceof Cluster ? ['error', 'node error'] : ['error'];
  for (const event of events) redis.on(event, listener);
  return () => {
    for (const event of events) redis.off(event, listener);
  };
}
