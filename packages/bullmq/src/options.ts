import {
  checkRedisUrl,
  integerOption,
  MAX_TIMER_MS,
  maskUrl,
  type RetentionOptions,
  resolveRetentionOptions,
} from '@fc-async/core';
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
  /**
   * Redis: a `redis://` or `rediss://` URL, or ioredis options; not a client, `bullmq()`
   * opens its own connections. ioredis 5 or 6. They speak RESP2 whatever `protocol` and
   * `replyMapping` say, as options or in the URL's query.
   */
  connection: string | RedisOptions;
  /**
   * Prefix of every key (queue, records, stop channel): functions sharing a Redis need different
   * ones. On a Redis Cluster (ApsaraDB for Redis / Tair cluster instances too), a hash tag such as
   * `{fc-async}` or `{fc-async}:eu`, so that every key of the prefix lies in one slot. @default 'fc-async'
   */
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
   * ioredis `commandTimeout` given in `connection`, as an option or in the URL's query. @default 5000
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

/**
 * A prefix: letters, digits, '_', '.', ':' and '-', and at most one Redis hash tag (`{name}`)
 * anywhere in it. A Redis Cluster hashes a key by what its first `{...}` holds alone, and every key
 * of a prefix, BullMQ's too, starts with the prefix: a tag puts them all in its slot, as a cluster
 * needs of the keys one script or command touches. Refused: an empty tag (Redis hashes `{}` as no
 * tag, so each key lies in a slot of its own), a brace left open or never opened (a `{` would be
 * closed by whatever `}` a key's rest holds), a second tag (Redis reads the first alone) and nesting.
 */
const PREFIX = /^[A-Za-z0-9_.:-]*(?:\{[A-Za-z0-9_.:-]+\})?[A-Za-z0-9_.:-]*$/;

/** The hash tag of a valid prefix (`fc-async` of `{fc-async}:eu`), if it has one. */
export function hashTagOf(prefix: string): string | undefined {
  return /\{([^}]+)\}/.exec(prefix)?.[1];
}

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
  if (typeof connection !== 'string' && !isPlainObject(connection)) {
    // An ioredis client (or another class's instance): its options are on `.options`, not on it,
    // so ioredis would connect to 127.0.0.1:6379, which may be another Redis. bullmq() opens its own.
    throw new TypeError(
      `Expected \`connection\` to be a redis:// or rediss:// URL or ioredis options, got an object made by a class (an ioredis client?): pass its URL or options, bullmq() opens its own connections`,
    );
  }
  // ioredis is handed the URL as written, its query included (read as connection options), but
  // for the options bullmq() sets itself (see connect() in index.ts).
  if (isUrl) checkRedisUrl(connection, { name: 'connection' });
  const prefix = o.prefix ?? 'fc-async';
  if (typeof prefix !== 'string' || prefix === '' || prefix.length > 64 || !PREFIX.test(prefix)) {
    throw new TypeError(
      `Expected \`prefix\` to be 1 to 64 letters, digits, '_', '.', ':' or '-', with at most one hash tag such as \`{fc-async}\`, got \`${String(o.prefix)}\``,
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
 * Options made as a literal, by `JSON.parse`, `structuredClone` or `Object.create(null)`: no
 * prototype, or one that has none, as `Object.prototype` has (another realm's too, a config run in
 * a vm context). A class's instance (an ioredis client) has its class's, and an object whose options
 * sit on its prototype would lose them when spread.
 */
function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}
