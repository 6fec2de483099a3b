import { type FcAsyncError, silentLogger } from '@fc-async/core';
import { asyncEvent, listAllTasks } from '@fc-async/test-kit/fc-server';
import { freePort } from '@fc-async/test-kit/net';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { corkEachTurn } from '../src/cork.js';
import { type BullmqBackendOptions, type BullmqClusterConnection, bullmq } from '../src/index.js';
import {
  type App,
  taskApp as app,
  clusterInstance,
  scanKeys,
  taskStatus as status,
  stopSlowAndExpectEnds,
} from './cluster-app.js';
import { until } from './helpers.js';
import { type OwnRedis, type OwnRedisCluster, ownRedis, ownRedisCluster } from './redis-server.js';

// bullmq() on a Redis Cluster of three masters in direct connection mode (no proxy): each node
// answers only the slots it owns and redirects the rest (`MOVED`), so the client must follow the
// cluster's slot map, as on an open-source Redis Cluster, ElastiCache cluster mode or ApsaraDB /
// Tair's direct connection.

/** A tag whose slot (8627) is on the second node, which the startup list does not name (see clusterConnection). */
const PREFIX = '{transcode}';

let cluster: OwnRedisCluster;
let admins: Redis[];
beforeAll(async () => {
  cluster = await ownRedisCluster('redis-cluster');
  admins = cluster.nodes.map((node) => new Redis(node.url));
}, 30_000);
afterAll(async () => {
  for (const admin of admins ?? []) admin.disconnect();
  await cluster?.stop();
});

const closers: (() => Promise<unknown>)[] = [];
async function closeAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}
afterEach(async () => {
  await closeAll();
  for (const admin of admins) await admin.flushall();
});

/**
 * Two of the cluster's nodes, neither owning the tag's slot (the first as a URL, the third as an
 * address): the client finds the owner in the cluster's slot map.
 */
function clusterConnection(): BullmqClusterConnection {
  const [first, , third] = cluster.nodes as OwnRedis[];
  return { cluster: [(first as OwnRedis).url, { host: '127.0.0.1', port: (third as OwnRedis).port }] };
}

const instance = (app: App, options: Partial<BullmqBackendOptions> = {}) =>
  clusterInstance(app, { connection: clusterConnection(), prefix: PREFIX, ...options }, closers);

const keysOn = scanKeys;

/** The node owning `slot`, as the cluster's slot map says now (a test moves one). */
function ownerOf(slot: number): Promise<number> {
  return ownerAmong(cluster.nodes, admins[0] as Redis, slot);
}

/** The node owning `slot` among `nodes`, as the slot map `admin` reads says. */
async function ownerAmong(nodes: readonly OwnRedis[], admin: Redis, slot: number): Promise<number> {
  const slots = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const [, , [, port]] = slots.find(([from, to]) => slot >= from && slot <= to) as (typeof slots)[0];
  return nodes.findIndex((node) => node.port === port);
}

describe('bullmq() on a Redis Cluster in direct connection mode', () => {
  it('accepts, runs, retries, stops and lists tasks from two instances, every key on the node owning the tag’s slot', async () => {
    const tagSlot = Number(await admins[0]?.call('CLUSTER', 'KEYSLOT', PREFIX));
    const owner = await ownerOf(tagSlot);
    expect(owner).toBeGreaterThan(0);

    const worker = instance(app);
    const acceptor = instance(app, { worker: false });
    await Promise.all([worker.handler.engine?.whenReady(), acceptor.handler.engine?.whenReady()]);
    // The acceptor's dashboard: what the worker changes reaches it through BullMQ's event stream,
    // read on a cluster connection of the watch's own.
    const watched = new Set<string>();
    let following = false;
    const unwatch = acceptor.handler.engine?.watchStore((ids) => {
      // An empty list: the watch follows the stream from here on (its reader connected), read again.
      if (ids.length === 0) following = true;
      for (const id of ids) watched.add(id);
    });
    closers.push(async () => unwatch?.());
    await until('the watch to follow the event stream', () => following);

    expect((await acceptor.handler(asyncEvent('one'))).statusCode).toBe(202);
    const burst = Array.from({ length: 20 }, (_, i) => `burst_${i}`);
    const answers = await Promise.all([
      ...burst.map((id) => acceptor.handler(asyncEvent(id))),
      acceptor.handler(asyncEvent('burst_3')),
      acceptor.handler(asyncEvent('fails')),
      acceptor.handler(asyncEvent('slow')),
    ]);
    expect(answers.map((a) => a.statusCode)).toEqual([...burst.map(() => 202), 409, 202, 202]);

    // The stop travels from the acceptor to the worker on the stop channel (the cluster's pub/sub).
    const succeeded = ['one', ...burst];
    await stopSlowAndExpectEnds(worker, acceptor, succeeded);
    expect((await acceptor.handler.tasks.list({ status: 'Failed' })).tasks.map((t) => t.taskId)).toEqual(['fails']);
    await until('the watch to see the worker’s changes', () => succeeded.every((id) => watched.has(id)));

    await closeAll();
    const keys = await Promise.all(admins.map(keysOn));
    expect(keys[owner]).toEqual(
      expect.arrayContaining([`${PREFIX}:by-time`, `${PREFIX}:ended`, `${PREFIX}:task:one`, `${PREFIX}:tasks:events`]),
    );
    expect(keys.filter((_, i) => i !== owner)).toEqual(admins.slice(1).map(() => []));
  });
});

/**
 * Moves `slot` with its keys from node `from` to node `to`, as `redis-cli --cluster reshard` does:
 * the slot importing on one and migrating on the other, its keys moved by MIGRATE, then given to
 * `to` on every node.
 */
async function moveSlot(slot: number, from: number, to: number): Promise<void> {
  const source = admins[from] as Redis;
  const target = admins[to] as Redis;
  const [sourceId, targetId] = await Promise.all([source.call('CLUSTER', 'MYID'), target.call('CLUSTER', 'MYID')]);
  await target.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId as string);
  await source.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId as string);
  for (;;) {
    const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')) as string[];
    if (keys.length === 0) break;
    const port = String((cluster.nodes[to] as OwnRedis).port);
    await source.call('MIGRATE', '127.0.0.1', port, '', '0', '5000', 'KEYS', ...keys);
  }
  for (const admin of [target, source, ...admins.filter((a) => a !== source && a !== target)]) {
    await admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId as string);
  }
}

describe('bullmq() on a Redis Cluster: its slot moved', () => {
  it('follows the tag’s slot to the node it moved to, its connections open: the tasks accepted before and after all run', async () => {
    const tagSlot = Number(await admins[0]?.call('CLUSTER', 'KEYSLOT', PREFIX));
    const from = await ownerOf(tagSlot);
    const to = (from + 1) % admins.length;
    const worker = instance(app);
    const acceptor = instance(app, { worker: false });
    await Promise.all([worker.handler.engine?.whenReady(), acceptor.handler.engine?.whenReady()]);
    const before = Array.from({ length: 10 }, (_, i) => `before_${i}`);
    await Promise.all(before.map((id) => acceptor.handler(asyncEvent(id))));
    await until('the tasks accepted before to run', () => worker.successes.length === before.length);

    // Idle, the worker's blocking read waiting on the node losing the slot, which redirects it.
    await moveSlot(tagSlot, from, to);
    const after = Array.from({ length: 10 }, (_, i) => `after_${i}`);
    const answers = await Promise.all(after.map((id) => acceptor.handler(asyncEvent(id))));
    expect(answers.map((a) => a.statusCode)).toEqual(after.map(() => 202));
    await until('the tasks accepted after to run', () => worker.successes.length === before.length + after.length);
    const tasks = await listAllTasks(acceptor.handler.tasks, 7);
    expect(tasks.map((t) => [t.taskId, t.status]).sort()).toEqual(
      [...before, ...after].map((id) => [id, 'Succeeded']).sort(),
    );

    await closeAll();
    const keys = await Promise.all(admins.map(keysOn));
    expect(keys[to]).toEqual(
      expect.arrayContaining([`${PREFIX}:by-time`, `${PREFIX}:task:before_0`, `${PREFIX}:task:after_0`]),
    );
    expect(keys.filter((_, i) => i !== to)).toEqual(admins.slice(1).map(() => []));
  });
});

/** Freezes `node` (SIGSTOP): its connections stay open, and it answers, forwards and delivers nothing. */
function freeze(node: OwnRedis): void {
  node.child.kill('SIGSTOP');
}

describe('bullmq() on a Redis Cluster: a node other than the tag’s lost', () => {
  it('publishes a stop on the node owning the tag’s slot: a stop is answered while the other nodes are frozen', async () => {
    const tagSlot = Number(await admins[0]?.call('CLUSTER', 'KEYSLOT', PREFIX));
    const owner = await ownerOf(tagSlot);
    const worker = instance(app);
    // The stop rests on its publish here: no attempt of the tasks runs on this instance.
    const acceptor = instance(app, { worker: false, commandTimeoutMs: 500 });
    await Promise.all([worker.handler.engine?.whenReady(), acceptor.handler.engine?.whenReady()]);
    const slow = ['slow_1', 'slow_2', 'slow_3', 'slow_4', 'slow_5'];
    await Promise.all(slow.map((id) => acceptor.handler(asyncEvent(id))));
    await until('the tasks to run', async () => {
      const statuses = await Promise.all(slow.map((id) => status(acceptor.handler, id)));
      return statuses.every((s) => s === 'Running');
    });

    const others = cluster.nodes.filter((_, i) => i !== owner);
    for (const node of others) freeze(node);
    // Runs first (closers run last in, first out): the worker's subscriber may be on a frozen node.
    closers.push(async () => {
      for (const node of others) node.child.kill('SIGCONT');
    });
    // A PUBLISH names no key: ioredis's Cluster sent it to any node, a frozen one two times in three,
    // where it waited commandTimeoutMs and the stop failed 503 RedisUnavailable.
    const answers = await Promise.all(
      slow.map((id) =>
        acceptor.handler.tasks.stop(id).then(
          (task) => task.status,
          (error: FcAsyncError) => error.code,
        ),
      ),
    );
    expect(answers).toEqual(slow.map(() => 'Stopping'));
  });
});

describe('bullmq() on a Redis Cluster: the node of the stop channel’s subscriber lost', () => {
  it('aborts a running app whose stop was published while its subscriber lost its node, once it subscribes on another', async () => {
    // A cluster of this test alone: one of its nodes is killed.
    const own = await ownRedisCluster('redis-cluster-subscriber');
    closers.push(() => own.stop());
    const nodes = own.nodes as OwnRedis[];
    // Quiet about the killed node's refusals while they reconnect.
    const ownAdmins = nodes.map((node) => new Redis(node.url).on('error', () => {}));
    closers.push(async () => {
      for (const admin of ownAdmins) admin.disconnect();
    });
    const connection = {
      cluster: [(nodes[0] as OwnRedis).url, { host: '127.0.0.1', port: (nodes[2] as OwnRedis).port }],
    };
    const worker = instance(app, { connection });
    await worker.handler.engine?.whenReady();
    // The node the worker's subscriber is on: the one whose stop channel has a subscriber.
    const channel = `${PREFIX}:stop`;
    const subscribedAt = async () => {
      const counts = await Promise.all(ownAdmins.map(async (admin) => (await admin.pubsub('NUMSUB', channel))[1]));
      return counts.filter((count) => count === 1).length === 1 ? counts.indexOf(1) : -1;
    };
    // Lost while the tag's slot stays served: a node owning another. The subscriber starts on a
    // node the shared connection found first, the tag's owner maybe: its connection cut there, it
    // moves to the next node.
    const tagSlot = Number(await ownAdmins[0]?.call('CLUSTER', 'KEYSLOT', PREFIX));
    const owner = await ownerAmong(nodes, ownAdmins[0] as Redis, tagSlot);
    await until('the subscriber on a node', async () => (await subscribedAt()) >= 0);
    if ((await subscribedAt()) === owner) {
      await ownAdmins[owner]?.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await until('the subscriber on another node', async () => ![-1, owner].includes(await subscribedAt()));
    }
    const lost = await subscribedAt();
    expect(lost).not.toBe(owner);

    const acceptor = instance(app, { connection, worker: false });
    await acceptor.handler.engine?.whenReady();
    expect((await acceptor.handler(asyncEvent('slow'))).statusCode).toBe(202);
    await until('the task to run', async () => (await status(acceptor.handler, 'slow')) === 'Running');

    // Frozen first, so that the stop is published (on the tag's node) while the subscriber's node
    // delivers nothing, then killed: the subscriber moves to another node, the stop gone with it.
    const node = nodes[lost] as OwnRedis;
    freeze(node);
    expect((await acceptor.handler.tasks.stop('slow')).status).toBe('Stopping');
    const exited = new Promise((resolve) => node.child.once('exit', resolve));
    node.child.kill('SIGKILL');
    await exited;
    // The app ends its response when its signal aborts: the task ends, and its end is delivered.
    await until('the app aborted and the task’s end delivered', () => worker.failures.length === 1, 5000);
    expect(worker.failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    expect(await status(acceptor.handler, 'slow')).toBe('Stopped');
  }, 40_000);
});

/** How `backend`'s start fails (undefined: it started). */
function startFailure(backend: ReturnType<typeof bullmq>): Promise<FcAsyncError | undefined> {
  return Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger })).then(
    () => undefined,
    (error: unknown) => error as FcAsyncError,
  );
}

describe('bullmq() on a Redis Cluster: its connections', () => {
  it('sets its own connection options on every node, over those of `redisOptions`', async () => {
    // RESP3 would turn the scripts' replies into other shapes; a 1 ms command timeout would fail them.
    const redisOptions = { protocol: 3, replyMapping: 'resp3', commandTimeout: 1, maxRetriesPerRequest: 0 } as const;
    const { handler, successes } = instance(app, { connection: { ...clusterConnection(), redisOptions } });
    expect((await handler(asyncEvent('t_1'))).statusCode).toBe(202);
    await until('the task to be delivered', () => successes.length === 1);
    expect(await status(handler, 't_1')).toBe('Succeeded');
  });

  it('fails a start that no node answers within connectTimeoutMs, its connections dropped', async () => {
    const backend = bullmq({
      connection: { cluster: [`redis://127.0.0.1:${await freePort()}`] },
      prefix: PREFIX,
      connectTimeoutMs: 300,
    });
    const startedAt = performance.now();
    const failure = await startFailure(backend);
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message: 'Redis did not answer within 300 ms',
    });
    expect(performance.now() - startedAt).toBeLessThan(2000);
  });
  it('starts while its first startup node does not answer, the others serving', async () => {
    // A node lost without a word (its host gone, its address unanswered; frozen here): the shared
    // connection goes on to the next startup node. The stop channel's subscriber went to the first
    // startup node and waited for it past connectTimeoutMs, and the start failed RedisUnavailable.
    const silent = await ownRedis('redis-cluster-silent-node');
    closers.push(() => silent.stop());
    freeze(silent);
    const connection = { cluster: [silent.url, ...clusterConnection().cluster] };
    const { handler, successes } = instance(app, { connection, connectTimeoutMs: 4000 });
    expect((await handler(asyncEvent('t_1'))).statusCode).toBe(202);
    await until('the task to be delivered', () => successes.length === 1);
    expect(await status(handler, 't_1')).toBe('Succeeded');
  });

  it('fails a start at once on credentials the nodes refuse, as on one endpoint', async () => {
    // The admins' connections, open already, stay authenticated.
    for (const admin of admins) await admin.config('SET', 'requirepass', 'secret');
    closers.push(async () => {
      for (const admin of admins) await admin.config('SET', 'requirepass', '');
    });
    const backend = bullmq({
      connection: { ...clusterConnection(), redisOptions: { password: 'wrong' } },
      prefix: PREFIX,
    });
    const startedAt = performance.now();
    const failure = await startFailure(backend);
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      message: 'Redis refused the credentials of the connection',
    });
    expect(performance.now() - startedAt).toBeLessThan(2000);
  });

  it('fails a start at once, saying so, on a Redis that does not run in cluster mode', async () => {
    // It answers, but not with a slot map: without this, the start waited its connectTimeoutMs and
    // said `Redis did not answer within 10000 ms`.
    const backend = bullmq({ connection: { cluster: [inject('redisUrl')] }, prefix: PREFIX });
    const failure = await startFailure(backend);
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message:
        'Redis does not run in cluster mode: give its URL or options as `connection`, not in `connection.cluster`',
    });
    expect((failure?.cause as Error | undefined)?.message).toMatch(/^ERR This instance has cluster support disabled/);
  });
});

describe('bullmq() on a Redis Cluster: every node gone', () => {
  it('answers 503 RedisUnavailable rather than holding the request until a node is back', async () => {
    // A cluster of this test alone: all its nodes are killed.
    const own = await ownRedisCluster('redis-cluster-outage');
    closers.push(() => own.stop());
    const [first, , third] = own.nodes as OwnRedis[];
    const connection = { cluster: [(first as OwnRedis).url, { host: '127.0.0.1', port: (third as OwnRedis).port }] };
    const { handler } = instance(app, { connection, commandTimeoutMs: 500 });
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('t_before'))).statusCode).toBe(202);

    for (const node of own.nodes) node.child.kill('SIGKILL');
    await Promise.all(own.nodes.map((node) => new Promise((resolve) => node.child.once('exit', resolve))));
    // Bounded only so that a held request fails the test instead of hanging it.
    const held = new Promise<'held'>((resolve) => setTimeout(() => resolve('held'), 15_000).unref());
    const answer = await Promise.race([handler(asyncEvent('t_during')), held]);
    expect(answer).not.toBe('held');
    expect(answer).toMatchObject({ statusCode: 503 });
    expect(JSON.parse((answer as { body: string }).body)).toMatchObject({ code: 'RedisUnavailable' });
    const read = await Promise.race([
      handler.tasks.get('t_before').then(
        () => 'answered',
        (e: FcAsyncError) => e.code,
      ),
      held,
    ]);
    expect(read).toBe('RedisUnavailable');
  }, 40_000);
});

describe('corkEachTurn on a Redis Cluster', () => {
  it('corks the connection of each node, those the cluster opens after it was called too', async () => {
    const client = new Cluster([(cluster.nodes[0] as OwnRedis).url]);
    closers.push(() => client.quit());
    // Before the cluster has read its slot map: its nodes' connections are opened afterwards.
    corkEachTurn(client);
    await until('the cluster to be ready', () => client.status === 'ready');
    const owner = (cluster.nodes[await ownerOf(Number(await client.cluster('KEYSLOT', PREFIX)))] as OwnRedis).port;
    const node = client.nodes().find((n) => n.options.port === owner) as Redis;
    await node.ping();
    const cork = vi.spyOn(node.stream, 'cork');
    const key = `${PREFIX}:n`;
    const sameTurn = [client.set(key, '1'), client.incr(key), client.get(key), client.del(key)];
    expect(await Promise.all(sameTurn)).toEqual(['OK', 2, '2', 1]);
    expect(cork).toHaveBeenCalledTimes(1);
  });
});

describe('bullmq() cluster options', () => {
  const cluster = ['redis://10.0.0.5:6379'];

  it('takes startup nodes as URLs or addresses, beside ioredis cluster options', () => {
    const connection = { cluster: [...cluster, { host: '10.0.0.6', port: 6379 }], redisOptions: { password: 's' } };
    expect(bullmq({ connection, prefix: '{transcode}:eu' }).name).toBe('bullmq');
  });

  it('refuses a prefix without a hash tag, whose keys a cluster would spread over slots', () => {
    expect(() => bullmq({ connection: { cluster } })).toThrow(
      new TypeError(
        'Expected `prefix` to be a hash tag such as `{fc-async}` with a Redis Cluster (`connection.cluster`), so that every key of it lies in one slot, got `fc-async`',
      ),
    );
  });

  it.each([
    [[], '[]'],
    ['redis://10.0.0.5:6379', 'redis://10.0.0.5:6379'],
  ])('refuses startup nodes %j that are no list of nodes', (nodes, shown) => {
    expect(() => bullmq({ connection: { cluster: nodes as never }, prefix: PREFIX })).toThrow(
      new TypeError(
        `Expected \`connection.cluster\` to be a non-empty array of the cluster's nodes, each a redis:// URL or { host, port } naming an address alone (credentials and TLS go in \`redisOptions\`), got \`${shown}\``,
      ),
    );
  });

  it.each([
    ['redis://:secret@10.0.0.5:6379', 'redis://***@10.0.0.5:6379'],
    ['redis://10.0.0.5:6379/1', 'redis://10.0.0.5:6379/1'],
    ['redis://10.0.0.5:6379?tls=true', 'redis://10.0.0.5:6379?***'],
    ['rediss://10.0.0.5:6379', 'rediss://10.0.0.5:6379'],
    [{ host: '10.0.0.5', port: 6379, password: 'secret' }, '{ host, port, password }'],
    [{ host: '10.0.0.5' }, '{ host }'],
    [6379, '6379'],
  ])('refuses a startup node %j that names more or less than an address', (node, shown) => {
    expect(() => bullmq({ connection: { cluster: [node as never] }, prefix: PREFIX })).toThrow(
      new TypeError(
        `Expected \`connection.cluster[0]\` to be a redis:// URL or { host, port } naming an address alone (credentials and TLS go in \`redisOptions\`), got \`${shown}\``,
      ),
    );
  });

  it('refuses `redisOptions` that are no options', () => {
    expect(() => bullmq({ connection: { cluster, redisOptions: 'x' as never }, prefix: PREFIX })).toThrow(
      new TypeError('Expected `connection.redisOptions` to be ioredis options, got `x`'),
    );
  });
});
