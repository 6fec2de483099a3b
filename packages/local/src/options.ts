import { existsSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { FcAsyncError } from '@fc-async/core';
import { MAX_SYNC_BODY } from './body.js';
import { optionError } from './errors.js';
import type { LogFormat } from './log.js';
import { FUNCTION_NAME } from './spec.js';

/**
 * Options of {@link startEmulator} (the CLI's flags).
 *
 * @example
 * ```ts
 * const options: EmulatorOptions = { entry: 'src/app.ts', port: 9000, controlPort: 9001, logFormat: 'json' };
 * ```
 */
export interface EmulatorOptions {
  /** A module exporting an Express, Koa or Fastify app, an fc-async handler or an FC handler. */
  entry?: string | undefined;
  /** A Serverless Devs `s.yaml`. @default `s.yaml` in `cwd` when no `entry` is given */
  config?: string | undefined;
  /** The function name of `entry`. @default the entry file's name (`app.ts` → `app`) */
  name?: string | undefined;
  /** HTTP trigger port; 0 picks a free one. @default 9000 */
  port?: number | undefined;
  /** HTTP trigger address. @default '127.0.0.1' */
  host?: string | undefined;
  /** Control plane (FC API and dashboard) port; 0 picks a free one. @default 9001 */
  controlPort?: number | undefined;
  /** Control plane address; beyond loopback it needs `credentials`. @default '127.0.0.1' */
  controlHost?: string | undefined;
  /** The access key the control plane checks signatures (and dashboard sign-ins) against. */
  credentials?: { accessKeyId: string; accessKeySecret: string } | undefined;
  /**
   * Every control plane request must be signed with `credentials` (the dashboard signs in with
   * HTTP Basic). @default true when `controlHost` is beyond loopback, else false
   */
  requireSignatures?: boolean | undefined;
  /** Region of functions that name none. @default 'cn-hangzhou' */
  region?: string | undefined;
  /** Account id in ARNs and `x-fc-account-id`. @default '0' */
  accountId?: string | undefined;
  /** `memory` or `sqlite:PATH` (a relative PATH starts at `cwd`). @default 'memory' */
  store?: string | undefined;
  /**
   * A Redis URL: tasks go to BullMQ (`@fc-async/bullmq`). With `redisCluster`, one or several
   * URLs, startup nodes of a Redis Cluster. The CLI's `--redis`.
   */
  redis?: string | readonly string[] | undefined;
  /**
   * `redis` names nodes of a Redis Cluster in direct connection mode (open-source Redis Cluster,
   * ElastiCache cluster mode, ApsaraDB / Tair direct connection), reached through ioredis's
   * `Cluster`, which follows the slot map: any of its nodes, each a `redis://` or `rediss://` URL.
   * Their user name, password and TLS (`rediss://`) apply to every node, those found in the slot
   * map too: alike in every URL that has them. No database but 0. `redisPrefix` must be a hash tag
   * and defaults to `{fc-async}`. Not for a cluster behind a proxy (one endpoint, ApsaraDB / Tair
   * proxy mode): give its URL alone, with a `redisPrefix` that is a hash tag. The CLI's
   * `--redis-cluster`. @default false
   *
   * @example
   * ```ts
   * await startEmulator({
   *   entry: 'app.ts',
   *   redis: ['redis://:secret@10.0.0.5:6379', 'redis://10.0.0.6:6379'],
   *   redisCluster: true,
   * });
   * ```
   */
  redisCluster?: boolean | undefined;
  /**
   * With `redis`, what each function's BullMQ prefix starts with: `<redisPrefix>:<function>`. On a
   * Redis Cluster (ApsaraDB for Redis / Tair cluster instances too) a hash tag, so that every key
   * of a function lies in one slot. Checked as `bullmq()` checks its `prefix`. The CLI's
   * `--redis-prefix`. @default 'fc-async', '{fc-async}' with `redisCluster`
   *
   * @example
   * ```ts
   * await startEmulator({ entry: 'app.ts', redis: 'redis://10.0.0.5:6379', redisPrefix: '{fc-async}' });
   * ```
   */
  redisPrefix?: string | undefined;
  /** Attempts running at once, per function. @default 10 */
  concurrency?: number | undefined;
  /** Tasks waiting per function before new async requests get 429. @default 10000 */
  maxQueuedTasks?: number | undefined;
  /** Delay before the first retry, ms; it doubles with each retry (jittered). @default 1000 */
  retryBaseMs?: number | undefined;
  /** Timeout of `entry`, seconds (s.yaml functions use their `timeout`). @default 60 */
  timeoutSeconds?: number | undefined;
  /** @default 'text' */
  logFormat?: LogFormat | undefined;
  /**
   * Folder of the JSONL files of destinations that cannot be reached locally (a relative one
   * starts at `cwd`). @default '.fc-async'
   */
  outDir?: string | undefined;
  /** Where log lines go. @default stdout and stderr */
  output?: ((text: string, stream: 'out' | 'err') => void) | undefined;
  /** Working folder: where `s.yaml` is looked for and relative paths start. @default process.cwd() */
  cwd?: string | undefined;
  /**
   * Dashboard live streams (`/api/events`) open at once, 1 to 10000; past it a new one gets `503
   * TooManyStreams` with `Retry-After` until one closes (the dashboard tries again by itself).
   * All the tabs of one browser share one stream. @default 64
   *
   * @example
   * ```ts
   * await startEmulator({ entry: 'app.ts', maxEventStreams: 8 });
   * ```
   */
  maxEventStreams?: number | undefined;
  /**
   * Bytes of request bodies held at once, trigger and control plane together, from 32 MiB (FC's
   * largest body) up: a body counts from its first byte until its invocation returns. A request
   * whose body would go past it gets `503 BodyBudgetExceeded` with `Retry-After` and its
   * connection closed; requests already taken go on. A body whose client sends no byte of it for
   * 30 s gets `408 RequestTimeout` and gives its bytes back. @default 268435456 (256 MiB)
   *
   * @example
   * ```ts
   * await startEmulator({ entry: 'app.ts', maxBufferedBodyBytes: 64 * 1024 * 1024 });
   * ```
   */
  maxBufferedBodyBytes?: number | undefined;
  /**
   * Header names kept out of the async tasks the emulator keeps (its task records, in memory or in
   * the store, `GetAsyncTask`'s `taskPayload`, the dashboard) and of the attempts it replays, on
   * top of the default list (`authorization`, cookies, FC's credentials). A custom runtime needs
   * them here: the emulator plays FC in front of it and keeps its tasks, and cannot see the
   * `redactHeaders` of the `fcAsync()` inside it. Also applied to the handlers the emulator
   * builds around an app entry, and to an fc-async handler the entry exports, on top of its own.
   * The CLI's `--redact-header NAME`, once per name.
   *
   * @example
   * ```ts
   * await startEmulator({ config: 's.yaml', redactHeaders: ['x-api-key'] });
   * ```
   */
  redactHeaders?: readonly string[] | undefined;
}

/** {@link EmulatorOptions} checked, with defaults. */
export interface ResolvedOptions {
  entry?: string | undefined;
  config?: string | undefined;
  name: string;
  port: number;
  host: string;
  controlPort: number;
  controlHost: string;
  credentials?: { accessKeyId: string; accessKeySecret: string } | undefined;
  requireSignatures: boolean;
  region: string;
  accountId: string;
  store?: string | undefined;
  redis?: string | readonly string[] | undefined;
  redisCluster: boolean;
  redisPrefix?: string | undefined;
  concurrency: number;
  maxQueuedTasks: number;
  retryBaseMs: number;
  timeoutSeconds: number;
  logFormat: LogFormat;
  outDir: string;
  output?: EmulatorOptions['output'];
  cwd: string;
  maxEventStreams: number;
  maxBufferedBodyBytes: number;
  redactHeaders: readonly string[];
}

function int(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw optionError(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** A region id (`cn-hangzhou`, `ap-southeast-1`) and an account id: they go into ARNs and FC's headers. */
const REGION = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const ACCOUNT_ID = /^\d{1,32}$/;

function text(name: string, value: unknown, pattern: RegExp, expected: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !pattern.test(value)) throw optionError(name, expected, value);
  return value;
}

/**
 * Checks the options of `loadServerlessConfig` (a misspelt key, or an `env` that is not an
 * object, would otherwise be ignored and its variables left unresolved).
 */
export function checkServerlessConfigOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw optionError('options', 'an object', Array.isArray(options) ? 'array' : options);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'env' && key !== 'accountId' && key !== 'region') {
      throw new TypeError(`Unknown loadServerlessConfig() option \`${key}\``);
    }
  }
  if (o.env !== undefined && (typeof o.env !== 'object' || o.env === null || Array.isArray(o.env))) {
    throw optionError('env', 'an object of environment variables', Array.isArray(o.env) ? 'array' : o.env);
  }
  text('region', o.region, REGION, 'a region id (cn-hangzhou)', '');
  text('accountId', o.accountId, ACCOUNT_ID, 'an account id of digits', '');
}

/**
 * The budget of `Emulator.close(options)`: a wrong one would reach each function's engine, whose
 * refusal the close logs and goes past, leaving tasks stopped without the time they were given.
 */
export function closeTimeout(options: unknown): number {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw optionError('options', 'an object', Array.isArray(options) ? 'array' : options);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'timeoutMs') throw new TypeError(`Unknown close() option \`${key}\``);
  }
  const { timeoutMs } = options as { timeoutMs?: unknown };
  if (timeoutMs === undefined) return 10_000;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))
    throw optionError('timeoutMs', 'a number from 0 and up', timeoutMs);
  return timeoutMs;
}

/**
 * A host as a socket takes it: an IPv6 address written as a URL writes it (`[::1]`) without its
 * brackets, which the address lookup would otherwise take for a host name (ENOTFOUND).
 */
export function socketHost(host: string): string {
  return host.replace(/^\[([^\]]*:[^\]]*)\]$/, '$1');
}

/** True for 127.0.0.0/8, ::1 and localhost (a host {@link socketHost} took its brackets from). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Derives a function name from a file name: `my app.ts` → `my-app`. */
function nameFromFile(file: string): string {
  const stem = basename(file, extname(file)).replace(/[^A-Za-z0-9_-]/g, '-');
  const name = /^[A-Za-z_]/.test(stem) ? stem : `fn-${stem}`;
  return name.slice(0, 64);
}

const KEYS = new Set([
  'entry',
  'config',
  'name',
  'port',
  'host',
  'controlPort',
  'controlHost',
  'credentials',
  'requireSignatures',
  'region',
  'accountId',
  'store',
  'redis',
  'redisCluster',
  'redisPrefix',
  'concurrency',
  'maxQueuedTasks',
  'retryBaseMs',
  'timeoutSeconds',
  'logFormat',
  'outDir',
  'output',
  'cwd',
  'maxEventStreams',
  'maxBufferedBodyBytes',
  'redactHeaders',
]);

/** An HTTP header name (RFC 9110 token), as `redactHeaders` of the handlers takes them. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `redactHeaders` checked eagerly and lower-cased: a name matching no header would let its value through silently. */
function headerNames(value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw optionError('redactHeaders', 'an array of header names', typeof value);
  return value.map((name: unknown) => {
    if (typeof name !== 'string' || !HEADER_NAME.test(name)) {
      // Named without an index: the CLI says `--redact-header` for it (one flag per name).
      const got = typeof name === 'string' ? JSON.stringify(name.slice(0, 64)) : typeof name;
      throw optionError('redactHeaders', "header names (letters, digits and !#$%&'*+.^_`|~-)", got);
    }
    return name.toLowerCase();
  });
}

/** Validates options eagerly (`TypeError` naming the option) and applies the defaults. */
export function resolveOptions(options: EmulatorOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw optionError('options', 'an object', Array.isArray(options) ? 'array' : options);
  }
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new TypeError(`Unknown startEmulator() option \`${key}\``);
  }
  for (const key of ['config', 'host', 'controlHost', 'store', 'redisPrefix', 'outDir', 'cwd'] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw optionError(key, 'a non-empty string', value);
    }
  }
  const redis: unknown = options.redis;
  const isUrl = (value: unknown) => typeof value === 'string' && value !== '';
  if (redis !== undefined && !isUrl(redis) && !(Array.isArray(redis) && redis.length > 0 && redis.every(isUrl))) {
    // Not the value: a URL may hold a password.
    throw optionError('redis', 'a Redis URL, or a non-empty array of them with `redisCluster`', typeof redis);
  }
  if (options.redisCluster !== undefined && typeof options.redisCluster !== 'boolean') {
    throw optionError('redisCluster', 'a boolean', options.redisCluster);
  }
  for (const key of ['config', 'outDir'] as const) {
    // `--out-dir=~/x` or a quoted `~`: no shell expanded it, and a folder named `~` would be made.
    if (options[key]?.startsWith('~')) {
      throw optionError(key, 'a path not starting with `~` (no shell expanded it here: write $HOME/...)', options[key]);
    }
  }
  if (options.output !== undefined && typeof options.output !== 'function') {
    throw optionError('output', 'a function', typeof options.output);
  }
  const cwd = options.cwd ?? process.cwd();
  let { entry, config } = options;
  if (entry !== undefined && config !== undefined)
    throw new TypeError('Pass either an entry or `config` (s.yaml), not both');
  if (entry === undefined && config === undefined) {
    config = ['s.yaml', 's.yml'].map((f) => resolve(cwd, f)).find((f) => existsSync(f));
    if (!config) {
      throw new FcAsyncError('NothingToServe', `Give an entry module, or run where an s.yaml is (none in ${cwd})`);
    }
  }
  if (entry !== undefined && (typeof entry !== 'string' || entry === ''))
    throw optionError('entry', 'a file path', entry);
  const name = options.name ?? (entry ? nameFromFile(entry) : 'fc-async-local');
  if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
    throw optionError(
      'name',
      'a function name (1 to 64 letters, digits, _ and -, starting with a letter or _)',
      name.length > 64 ? `${name.slice(0, 20)}... (${name.length} characters)` : name,
    );
  }
  const logFormat = options.logFormat ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw optionError('logFormat', "'text' or 'json'", logFormat);
  const controlHost = socketHost(options.controlHost ?? '127.0.0.1');
  const credentials = options.credentials;
  if (
    credentials !== undefined &&
    (typeof credentials !== 'object' ||
      credentials === null ||
      typeof credentials.accessKeyId !== 'string' ||
      typeof credentials.accessKeySecret !== 'string' ||
      !credentials.accessKeyId ||
      !credentials.accessKeySecret)
  ) {
    throw new TypeError('Expected `credentials` to have a non-empty accessKeyId and accessKeySecret');
  }
  const requireSignatures = options.requireSignatures ?? !isLoopback(controlHost);
  if (typeof requireSignatures !== 'boolean') throw optionError('requireSignatures', 'a boolean', requireSignatures);
  if (requireSignatures && !credentials) {
    throw new FcAsyncError(
      'AccessKeyRequired',
      isLoopback(controlHost)
        ? 'Requiring signatures needs an access key: set FC_ASYNC_ACCESS_KEY_ID and FC_ASYNC_ACCESS_KEY_SECRET'
        : `The control plane on ${controlHost} would be reachable from other machines: set FC_ASYNC_ACCESS_KEY_ID and FC_ASYNC_ACCESS_KEY_SECRET so that requests must be signed`,
    );
  }
  return {
    entry: entry === undefined ? undefined : resolve(cwd, entry),
    config: config === undefined ? undefined : resolve(cwd, config),
    name,
    port: int('port', options.port, 0, 65_535, 9000),
    host: socketHost(options.host ?? '127.0.0.1'),
    controlPort: int('controlPort', options.controlPort, 0, 65_535, 9001),
    controlHost,
    credentials,
    requireSignatures,
    region: text('region', options.region, REGION, 'a region id (cn-hangzhou)', 'cn-hangzhou'),
    accountId: text('accountId', options.accountId, ACCOUNT_ID, 'an account id of digits', '0'),
    store: options.store,
    redis: options.redis,
    redisCluster: options.redisCluster ?? false,
    redisPrefix: options.redisPrefix,
    concurrency: int('concurrency', options.concurrency, 1, 10_000, 10),
    maxQueuedTasks: int('maxQueuedTasks', options.maxQueuedTasks, 1, 10_000_000, 10_000),
    retryBaseMs: int('retryBaseMs', options.retryBaseMs, 1, 3_600_000, 1000),
    timeoutSeconds: int('timeoutSeconds', options.timeoutSeconds, 1, 86_400, 60),
    logFormat,
    outDir: resolve(cwd, options.outDir ?? '.fc-async'),
    output: options.output,
    cwd,
    maxEventStreams: int('maxEventStreams', options.maxEventStreams, 1, 10_000, 64),
    maxBufferedBodyBytes: int(
      'maxBufferedBodyBytes',
      options.maxBufferedBodyBytes,
      MAX_SYNC_BODY,
      Number.MAX_SAFE_INTEGER,
      256 * 1024 * 1024,
    ),
    redactHeaders: headerNames(options.redactHeaders),
  };
}
