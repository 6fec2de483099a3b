import { Cluster, type ClusterNode, type ClusterOptions, type Command, Redis, type RedisOptions } from 'ioredis';
import { type BullmqClusterConnection, isClusterConnection } from './options.js';

/**
 * A connection of this backend: to one Redis endpoint, or to a Redis Cluster through ioredis's
 * `Cluster`, which sends each command to the node owning its keys' slot. What the store, the queue
 * and retention send is the same on both: commands and scripts whose keys share the prefix's slot.
 */
export type RedisClient = Redis | Cluster;

/** The store's connection, which the queue and the worker share (see {@link SharedConnection}). */
export type SharedClient = SharedConnection | SharedCluster;

/** ioredis 6's options for the wire protocol of ioredis 5 (which has neither). */
const RESP2 = { protocol: 2, replyMapping: 'legacy' } as const;

/** A blocking read waits as long as it asks: no command timeout, no retry limit while Redis is away. */
const BLOCKING = { maxRetriesPerRequest: null, commandTimeout: undefined, ...RESP2 } as const;

/**
 * A command fails after 20 reconnection attempts (Redis down) or `commandTimeout` ms without an
 * answer (Redis frozen behind an open socket) rather than waiting forever. RESP2, whichever
 * ioredis major is installed: ioredis 6 speaks RESP3 unless told otherwise (ioredis 5 ignores
 * `protocol`), and the replies of BullMQ's scripts and ours are read in RESP2's shapes (a
 * `replyMapping: 'resp3'` in `connection` would turn hashes into objects and scores into numbers).
 * These options win over the same ones in `connection`, whether in an object, in a URL's query or
 * in a cluster's `redisOptions` (every node's connection).
 */
export function connect(
  connection: string | RedisOptions | BullmqClusterConnection,
  commandTimeout: number,
  extra?: Pick<RedisOptions, 'autoResubscribe'>,
): SharedClient {
  const own = ownOptions(commandTimeout, extra);
  if (isClusterConnection(connection)) return new SharedCluster(connection, own);
  return typeof connection === 'string'
    ? new SharedConnection(withoutQueryOptions(connection, Object.keys(own)), own)
    : new SharedConnection({ ...connection, ...own });
}

/**
 * The stop channel's subscriber: as {@link connect} makes it, `autoResubscribe` off (the store
 * subscribes again itself after each reconnection), but on a Redis Cluster one connection to one
 * node, which moves to another node when it reconnects (see {@link NodeSubscriber}).
 */
export function connectSubscriber(
  connection: string | RedisOptions | BullmqClusterConnection,
  shared: SharedClient,
  commandTimeout: number,
): RedisClient {
  if (!isClusterConnection(connection) || !(shared instanceof Cluster)) {
    return connect(connection, commandTimeout, { autoResubscribe: false });
  }
  return new NodeSubscriber(connection, shared, ownOptions(commandTimeout, { autoResubscribe: false }));
}

/** What {@link connect} sets on a connection, over the app's options. */
function ownOptions(commandTimeout: number, extra?: Pick<RedisOptions, 'autoResubscribe'>) {
  return { maxRetriesPerRequest: 20, commandTimeout, ...extra, ...RESP2 };
}

/**
 * `maintNotifications: 'disabled'`, as ioredis 6's Cluster sets it on its nodes' connections. Spread
 * from an `object`: ioredis 5 has no such option (it ignores it) and its types would refuse the key.
 */
const NO_MAINT_NOTIFICATIONS: object = { maintNotifications: 'disabled' };

/**
 * The stop channel's subscriber on a Redis Cluster: a connection to one node (a cluster forwards
 * a PUBLISH to every node), once the shared connection is ready one of the nodes it found, then at
 * each reconnection the next of the nodes it knows (the startup nodes while it knows none). Not
 * the first startup node at once: one that is lost, its address unanswered, held the start for
 * `connectTimeout` (10 s) while the other nodes served. Not ioredis's Cluster: its subscriber, when
 * its node is lost, subscribes again on another node by itself and says nothing, so the stops
 * published in between were not looked for. This one emits `ready` after each reconnection, as on
 * one endpoint, and the store looks (see RedisTaskStore.listen).
 */
class NodeSubscriber extends Redis {
  constructor({ cluster, redisOptions }: BullmqClusterConnection, shared: Cluster, own: RedisOptions & typeof RESP2) {
    const startup = cluster.map(addressOf);
    const known = () => {
      const nodes = shared.nodes('all');
      // A node the shared connection is connected to first: it answered just now.
      nodes.sort((a, b) => Number(b.status === 'ready') - Number(a.status === 'ready'));
      return nodes.length > 0 ? nodes.map(({ options }) => ({ host: options.host, port: options.port })) : startup;
    };
    super({
      ...redisOptions,
      ...own,
      ...startup[0],
      lazyConnect: true,
      ...NO_MAINT_NOTIFICATIONS,
      // Called before each reconnection: the node it tries is set here. 50 ms more each time, up to
      // 2 s: another node may be up at once.
      retryStrategy: (times) => {
        const nodes = known();
        const at = nodes.findIndex(({ host, port }) => host === this.options.host && port === this.options.port);
        Object.assign(this.options, nodes[(at + 1) % nodes.length]);
        return Math.min(times * 50, 2000);
      },
    });
    const first = () => {
      if (this.status !== 'wait') return; // closed before the shared connection was ready
      Object.assign(this.options, known()[0]);
      // A failed connection is an `error` event, and it reconnects (retryStrategy).
      this.connect().catch(() => undefined);
    };
    if (shared.status === 'ready') first();
    else shared.once('ready', first);
  }
}

/** A startup node's address (validated: a `redis://HOST:PORT` URL or `{ host, port }`). */
function addressOf(node: string | { host: string; port: number }): { host: string; port: number } {
  if (typeof node !== 'string') return { host: node.host, port: node.port };
  const url = new URL(node);
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 6379) };
}

/**
 * `url` with the options named in `names` taken out of its query, so that the same options passed
 * beside it win, as they do over an options object. ioredis lets a URL's query win over the
 * options passed with the URL, and reads its values as text: `?commandTimeout=100` would have left
 * commands with no bound at all, and `?replyMapping=resp3` makes ioredis 6 refuse `protocol: 2`.
 */
function withoutQueryOptions(url: string, names: readonly string[]): string {
  const parsed = new URL(url);
  if (!names.some((name) => parsed.searchParams.has(name))) return url;
  for (const name of names) parsed.searchParams.delete(name);
  return parsed.href;
}

/**
 * A connection like `client` for blocking reads (the watch's), of its own: not one of the copies
 * a {@link SharedClient} drops when a worker's close is given up on.
 */
export function blockingCopyOf(client: RedisClient): RedisClient {
  if (client instanceof Cluster) {
    // Cluster's own duplicate, not SharedCluster's (which counts its copies as BullMQ's).
    return Cluster.prototype.duplicate.call(client, [], {
      redisOptions: { ...client.options.redisOptions, ...BLOCKING },
    }) as Cluster;
  }
  return new Redis({ ...client.options, ...BLOCKING });
}

/** Copies of a shared connection that BullMQ made, dropped together (a worker's close given up on). */
class Copies {
  private readonly copies = new Set<RedisClient>();

  add<C extends RedisClient>(copy: C): C {
    this.copies.add(copy);
    copy.once('end', () => this.copies.delete(copy));
    return copy;
  }

  disconnect(): void {
    for (const copy of this.copies) copy.disconnect();
    this.copies.clear();
  }
}

/**
 * The store's connection, which the queue and the worker share. BullMQ duplicates it for the
 * worker's blocking reads, which must wait for Redis without a retry limit.
 */
class SharedConnection extends Redis {
  private readonly copies = new Copies();

  override duplicate(override?: Partial<RedisOptions>): Redis {
    return this.copies.add(new Redis({ ...this.options, ...override, ...BLOCKING }));
  }

  /** Drops the copies at once, reconnection included (a worker's close given up on). */
  disconnectCopies(): void {
    this.copies.disconnect();
  }
}

/**
 * {@link SharedConnection} on a Redis Cluster. BullMQ duplicates a cluster with its options for
 * the nodes under `redisOptions`, where the blocking reads' own go too.
 */
class SharedCluster extends Cluster {
  private readonly copies = new Copies();

  private readonly commandTimeoutMs: number | undefined;

  constructor({ cluster, ...options }: BullmqClusterConnection, own: RedisOptions & typeof RESP2) {
    super([...cluster], { ...options, redisOptions: { ...options.redisOptions, ...own } });
    this.commandTimeoutMs = own.commandTimeout;
  }

  /**
   * While no node is connected (every node gone, the cluster reconnecting), the cluster holds a
   * command in a queue of its own, where no node's `commandTimeout` runs and no retry is counted:
   * an accept or a read waited there until a node came back. Bounded here from when it is sent, as
   * on one endpoint (a node that takes it later keeps this timer: it sets one only when there is none).
   */
  override sendCommand(command: Command, ...rest: unknown[]): unknown {
    if (this.status !== 'ready' && this.commandTimeoutMs !== undefined) command.setTimeout(this.commandTimeoutMs);
    return (super.sendCommand as (command: Command, ...rest: unknown[]) => unknown)(command, ...rest);
  }

  override duplicate(nodes?: ClusterNode[], override?: ClusterOptions): Cluster {
    const redisOptions = { ...this.options.redisOptions, ...override?.redisOptions, ...BLOCKING };
    return this.copies.add(super.duplicate(nodes, { ...override, redisOptions }) as Cluster);
  }

  /** Drops the copies at once, reconnection included (a worker's close given up on). */
  disconnectCopies(): void {
    this.copies.disconnect();
  }
}
