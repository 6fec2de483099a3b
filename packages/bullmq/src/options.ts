import { integerOption, MAX_TIMER_MS, maskUrl, type RetentionOptions, resolveRetentionOptions } from '@fc-async/core';
import type { RedisOptions } from 'ioredis';

/**
 * Options of the BullMQ backend (`bullmq(options)`).
 *
 * Retention (`maxTasks`, `retentionMs`, `pruneIntervalMs`) is core's {@link RetentionOptions}.
 *
 * @example
 * ```ts
 * bullmq({ connection: 'redis://10.0.0.5:6379/0', prefix: 'transcode', worker: process.env.ROLE !== 'api' });
 * ```
 */
export interface BullmqBackendOptions extends RetentionOptions {
  /** Redis: a `redis://` or `rediss://` URL, or ioredis options. */
  connection: string | RedisOptions;
  /** Prefix of every key (queue, records, stop channel): functions sharing a Redis need different ones. @default 'fc-async' */
  prefix?: string | undefined;
  /** Run tasks on this instance; `false` for one that only accepts requests and serves the task API. @default true */
  worker?: boolean | undefined;
  /** An instance that has not renewed a task's lock for this long (it died) loses the task to another. @default 30000 */
  lockDurationMs?: number | undefined;
  /** How often each worker looks for tasks whose lock expired. @default 30000 */
  stalledIntervalMs?: number | undefined;
  /** How long to wait for Redis on start before failing with `RedisUnavailable`. @default 10000 */
  connectTimeoutMs?: number | undefined;
  /**
   * How long a command may wait for Redis's answer before it fails (Redis frozen, or so busy it
   * does not answer while its connection stays open): an async request then gets `503
   * RedisUnavailable` within about this long instead of waiting forever, and `tasks.get / list /
   * stop` and `close()` end. The worker's blocking reads are not bounded by it. It replaces an
   * ioredis `commandTimeout` given in `connection`. @default 5000
   */
  commandTimeoutMs?: number | undefined;
}

/** {@link BullmqBackendOptions} with every default applied. */
export type ResolvedBullmqOptions = {
  [K in keyof BullmqBackendOptions]-?: Exclude<BullmqBackendOptions[K], undefined>;
};

const KNOWN = new Set([
  'connection',
  'prefix',
  'worker',
  'lockDurationMs',
  'stalledIntervalMs',
  'maxTasks',
  'retentionMs',
  'pruneIntervalMs',
  'connectTimeoutMs',
  'commandTimeoutMs',
]);

/** Validates `bullmq()`'s options eagerly; the caller's object is never written to. */
export function resolveBullmqOptions(options: unknown): ResolvedBullmqOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(
      `Expected \`options\` to be an object with a \`connection\`, got \`${Array.isArray(options) ? 'array' : String(options)}\``,
    );
  }
  const o = options as BullmqBackendOptions;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown bullmq() option \`${key}\``);
  }
  const connection = o.connection;
  const isUrl = typeof connection === 'string' && /^rediss?:\/\/\S+$/.test(connection);
  if (!isUrl && (typeof connection !== 'object' || connection === null || Array.isArray(connection))) {
    throw new TypeError(
      `Expected \`connection\` to be a redis:// or rediss:// URL or ioredis options, got \`${Array.isArray(connection) ? 'array' : maskUrl(String(connection))}\``,
    );
  }
  if (isUrl) checkRedisUrl(connection);
  const prefix = o.prefix ?? 'fc-async';
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) {
    throw new TypeError(
      `Expected \`prefix\` to be 1 to 64 letters, digits, '_', '.', ':' or '-', got \`${String(o.prefix)}\``,
    );
  }
  if (/:tasks?$/.test(prefix)) {
    // `<p>:task:by-time` would be the time index of prefix `<p>:task`, `<p>:tasks:*` BullMQ's keys.
    throw new TypeError(
      `Expected \`prefix\` not to end in a 'task' or 'tasks' segment, which another prefix's keys use, got \`${prefix}\``,
    );
  }
  if (o.worker !== undefined && typeof o.worker !== 'boolean') {
    throw new TypeError(`Expected \`worker\` to be a boolean, got \`${String(o.worker)}\``);
  }
  return {
    connection,
    prefix,
    worker: o.worker ?? true,
    lockDurationMs: integerOption('lockDurationMs', o.lockDurationMs, 100, 30_000, MAX_TIMER_MS),
    stalledIntervalMs: integerOption('stalledIntervalMs', o.stalledIntervalMs, 100, 30_000, MAX_TIMER_MS),
    ...resolveRetentionOptions(o),
    connectTimeoutMs: integerOption('connectTimeoutMs', o.connectTimeoutMs, 1, 10_000, MAX_TIMER_MS),
    commandTimeoutMs: integerOption('commandTimeoutMs', o.commandTimeoutMs, 1, 5_000, MAX_TIMER_MS),
  };
}

/**
 * Refuses a `connection` URL that ioredis would read otherwise than it reads: WHATWG `URL` parses
 * it as ioredis does. A path that is no database number (`/tasks`) leaves the tasks in db 0, a `%`
 * that starts no escape throws `URI malformed` from inside ioredis, `redis://:pw@/0` connects to
 * ioredis's default host, a fragment is dropped. The message masks the URL (see `maskUrl`).
 */
function checkRedisUrl(value: string): void {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const problem = url ? redisUrlProblem(url) : portProblem(value);
  if (problem !== undefined) {
    throw new TypeError(
      `Expected \`connection\` to be a redis:// or rediss:// URL${problem && ` ${problem}`}, got \`${maskUrl(value)}\``,
    );
  }
}

/** Why `URL` refused the value: a port past 65535 is worth naming, the rest is just no URL. */
function portProblem(value: string): string {
  const port = /^rediss?:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/.exec(value)?.[1];
  return port !== undefined && Number(port) > 65_535 ? 'with a port from 1 to 65535' : '';
}

/** What keeps a redis:// URL from saying what ioredis connects to (ioredis reads its query as options). */
function redisUrlProblem(url: URL): string | undefined {
  if (!url.host) return 'naming a host (redis://HOST:PORT/DB)';
  if (url.port === '0') return 'with a port from 1 to 65535';
  // ioredis takes the path's db first, else a `?db=` of the query.
  const db = url.pathname.length > 1 ? url.pathname.slice(1) : url.searchParams.get('db');
  if (db !== null && db !== '' && !isDbNumber(db)) {
    return 'whose database (its path, or `?db=`) is a whole number (/0, /1, ...)';
  }
  if (url.hash) return 'without a fragment (`#`), which ioredis does not read';
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return 'with its user name and password percent-encoded (a `%` written `%25`)';
  }
  return undefined;
}

const isDbNumber = (db: string) => /^\d+$/.test(db) && Number.isSafeInteger(Number(db));
