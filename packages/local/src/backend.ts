import { createHash } from 'node:crypto';
import { basename, dirname, extname, join, resolve } from 'node:path';
import {
  type AsyncBackend,
  checkRedisUrl,
  type EngineStartHold,
  FcAsyncError,
  type HeldDefaults,
  type LateEngineHold,
  maskUrl,
  memory,
} from '@fc-async/core';
import { optionError } from './errors.js';

/**
 * Where tasks live: in memory (default), a SQLite file, or Redis through BullMQ, each function's
 * keys under `<prefix>:<function>` (`prefix`: `--redis-prefix`, else {@link DEFAULT_REDIS_PREFIX}).
 */
export type StoreSpec =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: URL; prefix?: string | undefined }
  | { kind: 'redis-cluster'; nodes: readonly URL[]; prefix?: string | undefined };

/** What each function's BullMQ prefix starts with when `--redis-prefix` names none: `fc-async:<function>`. */
export const DEFAULT_REDIS_PREFIX = 'fc-async';

/**
 * The same with `--redis-cluster`: a hash tag, so that every key of a function lies in one slot
 * (`{fc-async}:<function>`), as a Redis Cluster needs of the keys one script touches, and as a
 * prefix without one is refused there (see `bullmq()`'s `prefix`).
 */
export const DEFAULT_CLUSTER_PREFIX = '{fc-async}';

/**
 * Reads `--store memory|sqlite:PATH` and `--redis URL` (one or the other), and `--redis-prefix`,
 * which only `--redis` takes; a relative PATH starts at `cwd`. A PATH starting with `~` is refused:
 * no shell expands it after `sqlite:`, and it would make a folder named `~`; so are a blank PATH
 * and SQLite's in-memory names, which `sqlite()` refuses but which, resolved against `cwd`, would
 * name a file there. The prefix itself is checked by `bullmq()` (see {@link backendFactory}). With
 * `cluster` (`--redis-cluster`), the `--redis` URLs, one or several (the flag repeated), are
 * startup nodes of a Redis Cluster (see {@link clusterNodes}); without it, one URL alone.
 */
export function parseStoreSpec(
  store: string | undefined,
  redis: string | readonly string[] | undefined,
  cwd: string = process.cwd(),
  redisPrefix?: string | undefined,
  cluster?: boolean | undefined,
): StoreSpec {
  const urls = redis === undefined ? [] : typeof redis === 'string' ? [redis] : redis;
  if (cluster && urls.length === 0) {
    throw new TypeError(
      '`--redis-cluster` makes the `--redis` URLs startup nodes of a Redis Cluster: give one or more with `--redis URL`',
    );
  }
  if (redisPrefix !== undefined && urls.length === 0) {
    throw new TypeError('`--redis-prefix` names the prefix of the tasks in Redis: give it with `--redis URL`');
  }
  if (urls.length > 0) {
    if (store !== undefined && store !== 'memory') {
      throw new TypeError('Pass either `--store` or `--redis`, not both');
    }
    const prefix = redisPrefix !== undefined ? { prefix: redisPrefix } : {};
    if (cluster) return { kind: 'redis-cluster', nodes: clusterNodes(urls), ...prefix };
    if (urls.length > 1) {
      throw new TypeError(
        `Pass one \`--redis\` URL (got ${urls.length}): several are the nodes of a Redis Cluster in direct connection mode, which \`--redis-cluster\` reaches`,
      );
    }
    return { kind: 'redis', url: redisUrl(urls[0] as string), ...prefix };
  }
  if (store === undefined || store === 'memory') return { kind: 'memory' };
  if (store.startsWith('sqlite:') && store.length > 'sqlite:'.length) {
    const path = store.slice('sqlite:'.length);
    // What sqlite() refuses: resolved against `cwd`, it would be a file of that name made there.
    if (path.trim() === '' || path === ':memory:' || path.startsWith('file::memory:')) {
      throw optionError(
        '--store',
        '`memory` or `sqlite:PATH` with PATH a file (an in-memory SQLite database keeps nothing: use --store memory)',
        store,
      );
    }
    if (path.startsWith('~')) {
      throw optionError(
        '--store',
        '`sqlite:PATH` with a PATH not starting with `~` (the shell does not expand it after `sqlite:`: write sqlite:$HOME/...)',
        store,
      );
    }
    return { kind: 'sqlite', path: resolve(cwd, path) };
  }
  throw optionError('--store', '`memory` or `sqlite:PATH`', store);
}

/**
 * `--redis` read with WHATWG `URL`, refused unless every part of it reaches ioredis as written (see
 * `checkRedisUrl`). Only host, port, credentials and database go on (`redisOptions`), so a query
 * (`?db=2`) or fragment is refused rather than dropped. The message masks the URL.
 */
function redisUrl(value: string): URL {
  return checkRedisUrl(value, { name: '--redis', readsQuery: false });
}

/**
 * The `--redis` URLs of `--redis-cluster`, each checked as {@link redisUrl} checks one. What a
 * node's connection needs besides its address (user name, password, TLS) is the same for every
 * node, those the cluster's slot map names too: given in one URL or in several alike, with no
 * database but 0 (a cluster has no other). A value listing several URLs is pointed to the
 * repeated flag. Messages mask the URLs.
 */
function clusterNodes(values: readonly string[]): URL[] {
  const nodes = values.map((value) => {
    if (/,\s*rediss?:\/\//i.test(value)) {
      throw new TypeError(
        `Expected each \`--redis\` to be one URL, got \`${value
          .split(/,\s*(?=rediss?:\/\/)/i)
          .map(maskUrl)
          .join(',')}\`: give each node of the cluster its own \`--redis\``,
      );
    }
    return redisUrl(value);
  });
  for (const node of nodes) {
    if (node.pathname.slice(1) !== '' && Number(node.pathname.slice(1)) !== 0) {
      throw new TypeError(
        `Expected \`--redis\` to name database 0 or none with \`--redis-cluster\` (a Redis Cluster has no other), got \`${maskUrl(node.href)}\``,
      );
    }
  }
  const protocols = new Set(nodes.map((node) => node.protocol));
  if (protocols.size > 1) {
    throw new TypeError(
      'Expected the `--redis` URLs of `--redis-cluster` to be all redis:// or all rediss://: TLS applies to every node of the cluster',
    );
  }
  const credentials = new Set(
    nodes.filter((node) => node.username || node.password).map((node) => `${node.username}:${node.password}`),
  );
  if (credentials.size > 1) {
    throw new TypeError(
      'Expected the `--redis` URLs of `--redis-cluster` to carry the same user name and password, or only one of them to carry any: every node of the cluster is reached with them',
    );
  }
  return nodes;
}

/**
 * The `bullmq()` connection of `--redis-cluster`: the startup nodes by address alone, the user
 * name, password and TLS of their URLs in `redisOptions`, where ioredis's `Cluster` applies them to
 * every node it reaches (a URL's would be its node's alone, which `bullmq()` refuses). With TLS,
 * the nodes' host names are kept as given (`dnsLookup`): ioredis would connect to the address they
 * resolve to, which a certificate issued for the name does not cover (ElastiCache's, say).
 */
export function clusterConnection(nodes: readonly URL[]): Record<string, unknown> {
  const each = nodes.map(redisOptions);
  // Alike in every URL that has them (see clusterNodes): one URL's stand for all.
  const { host: _host, port: _port, db: _db, ...shared }: Record<string, unknown> = Object.assign({}, ...each);
  return {
    cluster: each.map(({ host, port }) => ({ host, port })),
    ...(Object.keys(shared).length > 0 ? { redisOptions: shared } : {}),
    ...(shared.tls ? { dnsLookup: keepHostName } : {}),
  };
}

/** A `dnsLookup` that resolves nothing: the name is what the connection is opened to. */
function keepHostName(address: string, callback: (error: null, address: string) => void): void {
  callback(null, address);
}

/**
 * How messages name the Redis of `spec`: `Redis at redis://***@10.0.0.5:6379` (credentials masked),
 * `the Redis Cluster at 10.0.0.5:6379, 10.0.0.6:6379` (its startup nodes' addresses).
 */
export function redisName(spec: StoreSpec): string | undefined {
  if (spec.kind === 'redis') return `Redis at ${maskUrl(spec.url.href)}`;
  if (spec.kind === 'redis-cluster') return `the Redis Cluster at ${spec.nodes.map((node) => node.host).join(', ')}`;
  return undefined;
}

/** The connection options BullMQ (ioredis) takes, from a Redis URL `parseStoreSpec` took. */
export function redisOptions(url: URL): Record<string, unknown> {
  const db = url.pathname.slice(1);
  return {
    // `[::1]` is the URL's spelling of an IPv6 address; the socket takes `::1`.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

type Importer = (specifier: string) => Promise<Record<string, unknown>>;

const defaultImporter: Importer = (specifier) => import(specifier);

async function load(pkg: string, exportName: string, flag: string, importer: Importer) {
  let mod: Record<string, unknown>;
  try {
    mod = await importer(pkg);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
    throw new FcAsyncError(
      'BackendMissing',
      missing
        ? `${flag} needs the package ${pkg}, which is not installed (or not built): npm install ${pkg}`
        : `${flag}: loading ${pkg} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const factory = mod[exportName];
  if (typeof factory !== 'function') {
    throw new FcAsyncError('BackendMissing', `${flag}: ${pkg} does not export ${exportName}()`);
  }
  return factory as (...args: unknown[]) => AsyncBackend;
}

/**
 * One backend per function, by dynamic import of `@fc-async/sqlite` or `@fc-async/bullmq`.
 * Several functions get a SQLite file each (`tasks.db` → `tasks.<function>.db`) and a BullMQ prefix
 * each (`fc-async:<function>`, or `<--redis-prefix>:<function>`). Throws `BackendMissing` when the
 * package cannot be loaded, and the `TypeError` of `bullmq()` for a `--redis-prefix` it refuses.
 */
export async function backendFactory(
  spec: StoreSpec,
  functionNames: readonly string[],
  importer: Importer = defaultImporter,
): Promise<(functionName: string) => AsyncBackend | undefined> {
  if (spec.kind === 'memory') return () => undefined;
  if (spec.kind === 'sqlite') {
    const sqlite = await load('@fc-async/sqlite', 'sqlite', '--store sqlite:PATH', importer);
    const ext = extname(spec.path);
    const pathFor = (name: string) =>
      functionNames.length > 1 ? join(dirname(spec.path), `${basename(spec.path, ext)}.${name}${ext}`) : spec.path;
    return (name) => sqlite(pathFor(name));
  }
  const bullmq = await load('@fc-async/bullmq', 'bullmq', '--redis', importer);
  const cluster = spec.kind === 'redis-cluster';
  const connection = cluster ? clusterConnection(spec.nodes) : redisOptions(spec.url);
  if (spec.prefix !== undefined) checkRedisPrefix(bullmq, connection, spec.prefix);
  const prefix = spec.prefix ?? (cluster ? DEFAULT_CLUSTER_PREFIX : DEFAULT_REDIS_PREFIX);
  const owners = new Map<string, string>();
  for (const name of functionNames) {
    // A function named as another's cut name (`tasks-08515408` beside `tasks`): one queue for two apps.
    const owner = owners.get(functionPrefix(prefix, name));
    if (owner !== undefined && owner !== name) {
      throw new TypeError(
        `Functions \`${owner}\` and \`${name}\` would share the BullMQ prefix \`${functionPrefix(prefix, name)}\` (a name that is cut gets a hash of itself): rename one of them`,
      );
    }
    owners.set(functionPrefix(prefix, name), name);
  }
  return (name) => bullmq({ connection, prefix: functionPrefix(prefix, name) });
}

/** The longest prefix bullmq() takes. */
const MAX_PREFIX = 64;
/** The least a function adds to a prefix when its name is cut: `:`, a character, `-` and 8 of a hash. */
const HASHED_NAME = 1 + 1 + 1 + 8;

/**
 * Function `name`'s BullMQ prefix under `prefix`: `<prefix>:<name>`, as a deployment sharing the
 * Redis names it. A name that bullmq() would refuse there (`task` or `tasks`, a segment other
 * prefixes' keys end in; a prefix past 64 characters, FC allowing 64 for the name alone) is cut
 * and given a hash of itself (`fc-async:tasks-1a2b3c4d`): the same function, the same prefix at
 * every start, and two long names that begin alike apart.
 *
 * @example
 * ```ts
 * functionPrefix('fc-async', 'transcode'); // 'fc-async:transcode'
 * ```
 */
export function functionPrefix(prefix: string, name: string): string {
  const plain = `${prefix}:${name}`;
  if (plain.length <= MAX_PREFIX && !/^tasks?$/.test(name)) return plain;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${prefix}:${name.slice(0, MAX_PREFIX - prefix.length - (HASHED_NAME - 1))}-${hash}`;
}

/**
 * `--redis-prefix` as `bullmq()` checks a prefix (it validates its options when called, and
 * connects only at start), its `TypeError` naming the flag: the same rules (a hash tag at most, no
 * `task` segment at the end...) in one place.
 */
function checkRedisPrefix(bullmq: (...args: unknown[]) => AsyncBackend, connection: object, prefix: string): void {
  if (prefix.length > MAX_PREFIX - HASHED_NAME) {
    throw new TypeError(
      `Expected \`--redis-prefix\` to be at most ${MAX_PREFIX - HASHED_NAME} characters (each function's prefix is \`<prefix>:<function>\`, at most ${MAX_PREFIX}), got \`${prefix}\``,
    );
  }
  try {
    bullmq({ connection, prefix });
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    // bullmq()'s own limit is 64 characters; the flag's, 53 (its `:<function>` comes after).
    const message = error.message.replace(
      /^Expected `prefix` to be 1 to 64 /,
      `Expected \`prefix\` to be 1 to ${MAX_PREFIX - HASHED_NAME} `,
    );
    throw new TypeError(
      message
        .replace(/^Expected `prefix`/, 'Expected `--redis-prefix`')
        .replace('(`connection.cluster`)', '(`--redis-cluster`)'),
    );
  }
}

/**
 * What a start `bullmq()` refused on a Redis Cluster for a prefix without a hash tag lacks: its
 * message says to make the prefix a tag, not which flag of `fc-async dev` sets it. Empty for any
 * other error.
 */
export function redisPrefixHint(error: unknown, prefix: string | undefined): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'RedisUnavailable' || typeof message !== 'string' || !message.startsWith('Redis runs in cluster mode')) {
    return '';
  }
  const tag = `{${prefix ?? DEFAULT_REDIS_PREFIX}}`;
  return `; fc-async dev takes it as --redis-prefix '${tag}' (each function's prefix is then \`${tag}:<function>\`)`;
}

/**
 * Why a start `bullmq()` refused under `--redis-cluster` for a Redis that is no cluster, in the
 * CLI's words (its message names `connection.cluster`), Redis's answer left to its cause;
 * undefined for any other error.
 */
export function notClusterFailure(error: unknown): string | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'RedisUnavailable' || typeof message !== 'string') return undefined;
  if (!message.startsWith('Redis does not run in cluster mode')) return undefined;
  return 'Redis does not run in cluster mode: give its --redis URL alone, without --redis-cluster';
}

/**
 * Holds back the start of the backends `backendFor` makes until `open()`. A persistent backend
 * recovers on start (the destination calls a crash cut short, the ends of interrupted attempts,
 * jobs a shared queue hands over), so the emulator opens it once every function exists and its
 * s.yaml config (retries, destinations) is in force. `engineHold` holds the backends of the
 * engines an entry makes itself (an fc-async handler with its own `async.backend`) the same way:
 * the emulator loads each entry under one (see `holdEngineStarts`).
 */
export function gateBackends(backendFor: (functionName: string) => AsyncBackend | undefined): {
  backendFor: (functionName: string) => AsyncBackend | undefined;
  engineHold: (startedEarly: () => void) => EntryHold;
  open: () => void;
} {
  let open = () => {};
  let isOpen = false;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    engineHold: (startedEarly) => engineHold(opened, () => isOpen, startedEarly),
    backendFor(functionName) {
      const backend = backendFor(functionName);
      if (!backend) return undefined;
      const gated: AsyncBackend = {
        name: backend.name,
        persistent: backend.persistent,
        // The wait for open() is no part of the start: past the engine's start bound (an entry that
        // loads for long) it would fail a start not begun yet. The emulator bounds the start itself
        // once open (BACKEND_START_MS), and the built-in backends bound their own.
        startTimeoutMs: Number.POSITIVE_INFINITY,
        create: async (context) => {
          await opened;
          return backend.create(context);
        },
      };
      ungated.set(gated, backend);
      return gated;
    },
    open: () => {
      isOpen = true;
      open();
    },
  };
}

/**
 * The hold an entry loads under. `abandon()`, when the load failed: the engines it made never start
 * their backend (nobody serves or closes them; a persistent one would run what it recovers with
 * the app of a failed load, in a process about to give up).
 */
export interface EntryHold extends EngineStartHold {
  abandon(): void;
  /**
   * What the entry's handlers take where their own options say nothing (see `defaults`): the
   * handler options the emulator would build for the function. Its backend goes to the first
   * handler that names none, once: two engines on one task file or queue would fight over it.
   */
  offer(defaults: HeldDefaults): void;
  /** Whether a handler of the entry took the offered backend. */
  readonly backendTaken: boolean;
  /** The fc-async handlers the entry made while it loaded. */
  readonly handlersMade: number;
  /**
   * The persistent backends the entry's own engines named that are not started (see
   * `EngineStartHold.middleware` and `ownBackend`): those of its `fcAsync()` middlewares, and, once
   * disowned, those of its handlers, by name, for a notice.
   */
  notStarted(): string[];
  /**
   * The emulator serves the function with an engine of its own (the entry exports an app, or a
   * plain handler calling the fc-async handler it made): the handler that took the offered backend
   * gets memory's when it starts instead, so that two engines never share one task file or queue
   * (its engine accepts nothing then: the emulator's attempts reach it as attempts, see
   * `createFcHandler`). Unless it started before the emulator could tell (the entry awaited it
   * while it loaded): false then, and the backend stays that handler's.
   */
  disownBackend(): boolean;
}

/**
 * The backend behind each gated one: what an engine of the entry's own gets when the entry waits
 * for it while it loads (the gate opens only after every entry loaded: waiting on it would never end).
 */
const ungated = new WeakMap<AsyncBackend, AsyncBackend>();

/** A promise that never settles: the start of an abandoned hold's engines. */
const NEVER = new Promise<void>(() => {});

/**
 * The same hold for the backends of the engines an entry makes itself while it loads (an fc-async
 * handler with its own `async.backend`): they start at `opened` too. Only a wait for such an engine
 * before then starts it at once (`startedEarly` says so, for a persistent backend, whose recovery
 * then follows the handler's own options): the wait may be the entry's own, at its top level
 * (`await handler.engine.whenReady()`, or a request to itself), which the load, and so the
 * release, waits for. Nothing tells such a wait from one that would not block the load.
 */
function engineHold(opened: Promise<void>, isOpen: () => boolean, startedEarly: () => void): EntryHold {
  let abandoned = false;
  let offered: HeldDefaults | undefined;
  let backendTaken = false;
  let handlersMade = 0;
  let disowned = false;
  /** The handlers' own backends go: the emulator serves the function with an engine of its own. */
  let ownDisowned = false;
  /** The backend the hold gave (see `defaults`), and whether its engine started before the load ended. */
  let held: AsyncBackend | undefined;
  const startedBeforeOpen = new WeakSet<object>();
  /** The handlers' own backends (see `ownBackend`), and the persistent ones of the middlewares. */
  const owned: AsyncBackend[] = [];
  const middlewares: string[] = [];
  return {
    abandon: () => {
      abandoned = true;
    },
    offer(defaults) {
      offered = defaults;
    },
    get backendTaken() {
      return backendTaken;
    },
    get handlersMade() {
      return handlersMade;
    },
    notStarted() {
      const handlers = ownDisowned ? owned.filter((b) => b.persistent && !startedBeforeOpen.has(b)) : [];
      return [...middlewares, ...handlers.map((b) => b.name)];
    },
    disownBackend() {
      ownDisowned = true;
      if (held && startedBeforeOpen.has(held)) return false;
      disowned = true;
      return true;
    },
    logger: () => offered?.logger,
    // The emulator's engine takes the app's async calls, as FC does: an fcAsync() in it is in platform mode.
    middleware(own) {
      if (own.backend?.persistent) middlewares.push(own.backend.name);
      return 'platform';
    },
    ownBackend(backend) {
      const own: AsyncBackend = {
        name: backend.name,
        persistent: backend.persistent,
        ...(backend.startTimeoutMs !== undefined ? { startTimeoutMs: backend.startTimeoutMs } : {}),
        // An inner handler's (the emulator's engine runs its attempts): memory's, never connected,
        // unless a wait while the entry loaded started it before the emulator could tell.
        create: (context) =>
          ownDisowned && !startedBeforeOpen.has(own) ? memory().create(context) : backend.create(context),
      };
      owned.push(own);
      return own;
    },
    defaults(own) {
      handlersMade++;
      if (!offered?.async) return offered;
      const { backend, ...async } = offered.async;
      if (own.backend || backendTaken || backend === undefined) return { ...offered, async };
      backendTaken = true;
      const given: AsyncBackend = {
        name: backend.name,
        persistent: backend.persistent,
        create: (context) => {
          // Disowned first: a wait for this engine after the entry loaded (a warm-up timer of the
          // entry) while another entry still loads starts it early, but the emulator's engine keeps the backend.
          if (disowned) return memory().create(context);
          if (startedBeforeOpen.has(given)) return (ungated.get(backend) ?? backend).create(context);
          return backend.create(context);
        },
      };
      held = given;
      return { ...offered, async: { ...async, backend: given } };
    },
    enter(backend) {
      let startNow = () => {};
      const wanted = new Promise<void>((resolve) => {
        startNow = resolve;
      });
      return {
        start: Promise.race([opened, wanted]).then(() => (abandoned ? NEVER : undefined)),
        waited() {
          if (isOpen()) return;
          startedBeforeOpen.add(backend);
          if (backend.persistent && !(disowned && backend === held)) startedEarly();
          startNow();
        },
      };
    },
  };
}

/**
 * The hold for the handlers and `fcAsync()` middlewares an entry makes once it has loaded (in a
 * timer, a callback, an `import()` the entry did not await, on its first request), while the
 * emulator runs (see `holdLateEngines`). Nothing tells which function such a one belongs to any
 * more, but it is an inner one (the emulator read the entry's export when the load ended), whose
 * attempts come from the emulator's engine: a persistent backend its options name is never started
 * (a handler's engine gets memory's, as one made while its entry loaded; an `fcAsync()` runs in
 * platform mode), and `notice` says so once, with the backend's name. The emulator's own backends
 * (see `gateBackends`) are left as they are.
 */
export function lateEngineHold(notice: (backend: string) => void): LateEngineHold {
  let told = false;
  const tell = (backend: string) => {
    if (told) return;
    told = true;
    notice(backend);
  };
  return {
    ownBackend(backend) {
      if (!backend.persistent || ungated.has(backend)) return backend;
      tell(backend.name);
      return { name: backend.name, persistent: backend.persistent, create: (context) => memory().create(context) };
    },
    middleware(own) {
      if (!own.backend?.persistent) return undefined;
      tell(own.backend.name);
      return 'platform';
    },
  };
}
