import {
  checkRedisUrl,
  integerOption,
  MAX_TIMER_MS,
  maskUrl,
  type RetentionOptions,
  resolveRetentionOptions,
} from '@fc-async/core';
import type { ClusterOptions, RedisOptions } from 'ioredis';

/**
 * Options of the BullMQ backend (`bullmq(options)`).
 *
 * Retention (`maxTasks`, `retentionMs`, `pruneIntervalMs`) is core's {@link RetentionOptions}.
 *
 * @example
 * ```ts
 * bullmq({ connection: 'redis://10.0.0.5:6379/0', prefix: 'transcode', worker: process.env.ROLE !== 'api' });
 * // A Redis Cluster in direct connection mode: its nodes, and a prefix that is a hash tag.
 * bullmq({
 *   connection: {
 *     cluster: ['redis://10.0.0.5:6379', { host: '10.0.0.6', port: 6379 }],
 *     redisOptions: { password: process.env.REDIS_PASSWORD },
 *   },
 *   prefix: '{transcode}',
 * });
 * ```
 */
export interface BullmqBackendOptions extends RetentionOptions {
  /**
   * Redis: a `redis://` or `rediss://` URL, or ioredis options; a Redis Cluster whose nodes the
   * client reaches itself (open-source Redis Cluster, ElastiCache cluster mode, ApsaraDB / Tair
   * direct connection): {@link BullmqClusterConnection}. Not a client, `bullmq()` opens its own
   * connections. ioredis 5 or 6. They speak RESP2 whatever `protocol` and `replyMapping` say, as
   * options or in the URL's query.
   */
  connection: string | RedisOptions | BullmqClusterConnection;
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

/**
 * A Redis Cluster reached through ioredis's `Cluster`, which follows the cluster's slot map and its
 * `MOVED` / `ASK` redirections: the startup nodes in `cluster`, beside ioredis's cluster options.
 * What each node's connection needs (credentials, `tls`) goes in `redisOptions`, as ioredis has it;
 * the options `bullmq()` sets itself on a connection (`commandTimeout`, `maxRetriesPerRequest`,
 * `protocol`, `replyMapping`) win there too. The prefix must be a hash tag (`{transcode}`).
 *
 * @example
 * ```ts
 * const connection: BullmqClusterConnection = {
 *   cluster: ['redis://10.0.0.5:6379', { host: '10.0.0.6', port: 6379 }],
 *   redisOptions: { password: process.env.REDIS_PASSWORD },
 * };
 * bullmq({ connection, prefix: '{transcode}' });
 * ```
 */
export interface BullmqClusterConnection extends ClusterOptions {
  /** Startup nodes, any of the cluster's: `redis://HOST:PORT` URLs (no credentials nor database) or `{ host, port }`. */
  cluster: readonly (string | { host: string; port: number })[];
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
  if (isClusterConnection(connection)) return resolveOptions(o, checkClusterConnection(connection));
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
  // for the options bullmq() sets itself (see connect() in connection.ts).
  if (isUrl) checkRedisUrl(connection, { name: 'connection' });
  return resolveOptions(o, connection);
}

/** The options but `connection`, checked, with their defaults. */
function resolveOptions(
  o: BullmqBackendOptions,
  connection: BullmqBackendOptions['connection'],
): ResolvedBullmqOptions {
  const prefix = prefixOf(o);
  if (isClusterConnection(connection) && hashTagOf(prefix) === undefined) {
    // Checked here, not at start as on a single endpoint (see refuseClusterWithoutTag in index.ts):
    // `connection.cluster` says it is a cluster, where a prefix without a tag cannot work.
    throw new TypeError(
      `Expected \`prefix\` to be a hash tag such as \`{fc-async}\` with a Redis Cluster (\`connection.cluster\`), so that every key of it lies in one slot, got \`${prefix}\``,
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

/** The prefix, checked. */
function prefixOf(o: BullmqBackendOptions): string {
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
  return prefix;
}

/** Whether `connection` names a Redis Cluster's nodes (`cluster`), for ioredis's `Cluster`. */
export function isClusterConnection(connection: unknown): connection is BullmqClusterConnection {
  return typeof connection === 'object' && connection !== null && Object.hasOwn(connection, 'cluster');
}

/** What a cluster's startup node must be; its credentials and options go in `redisOptions`. */
const NODE_EXPECTED =
  'a redis:// URL or { host, port } naming an address alone (credentials and TLS go in `redisOptions`)';

/** `connection` when its startup nodes and `redisOptions` are as ioredis's `Cluster` takes them; else a TypeError. */
function checkClusterConnection(connection: BullmqClusterConnection): BullmqClusterConnection {
  if (!isPlainObject(connection)) {
    throw new TypeError(
      'Expected `connection` to be ioredis cluster options, got an object made by a class (an ioredis client?): pass its nodes and options, bullmq() opens its own connections',
    );
  }
  const nodes: unknown = connection.cluster;
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new TypeError(
      `Expected \`connection.cluster\` to be a non-empty array of the cluster's nodes, each ${NODE_EXPECTED}, got \`${Array.isArray(nodes) ? '[]' : String(nodes)}\``,
    );
  }
  for (const [i, node] of nodes.entries()) checkStartupNode(node, `connection.cluster[${i}]`);
  const { redisOptions } = connection;
  const isOptions = typeof redisOptions === 'object' && redisOptions !== null && isPlainObject(redisOptions);
  if (redisOptions !== undefined && !isOptions) {
    throw new TypeError(`Expected \`connection.redisOptions\` to be ioredis options, got \`${String(redisOptions)}\``);
  }
  return connection;
}

/**
 * A startup node: an address. ioredis reads a URL's credentials, database, query and TLS (`rediss:`)
 * for that node alone, not for the nodes it finds in the slot map: a password there would work on the first node
 * and be refused on the others, so it is refused here, pointing to `redisOptions`.
 */
function checkStartupNode(node: unknown, name: string): void {
  if (typeof node === 'string') {
    const url = checkRedisUrl(node, { name });
    // `rediss:` too: its TLS would be that node's alone.
    const addressAlone =
      url.protocol === 'redis:' &&
      !url.username &&
      !url.password &&
      (url.pathname === '' || url.pathname === '/') &&
      !url.search;
    if (addressAlone) return;
  } else if (typeof node === 'object' && node !== null && isPlainObject(node)) {
    const { host, port, ...rest } = node as { host?: unknown; port?: unknown };
    const isPort = Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65_535;
    if (typeof host === 'string' && host !== '' && isPort && Object.keys(rest).length === 0) return;
  }
  throw new TypeError(`Expected \`${name}\` to be ${NODE_EXPECTED}, got \`${described(node)}\``);
}

/** A startup node as an error shows it: a URL masked, an object by its keys (a password's value never). */
function described(node: unknown): string {
  if (typeof node === 'string') return maskUrl(node);
  if (typeof node !== 'object' || node === null) return String(node);
  return `{ ${Object.keys(node).join(', ')} }`;
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
