import { type FcAsyncError, silentLogger } from '@fc-async/core';
import { asyncEvent, listAllTasks } from '@fc-async/test-kit/fc-server';
import { taskRecord } from '@fc-async/test-kit/task-store';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BullmqBackendOptions, bullmq } from '../src/index.js';
import { keysOf } from '../src/keys.js';
import { RedisTaskStore } from '../src/store.js';
import { type App, taskApp as app, clusterInstance, scanKeys, stopSlowAndExpectEnds } from './cluster-app.js';
import { until } from './helpers.js';
import { type OwnRedis, ownClusterRedis } from './redis-server.js';

// bullmq() on a Redis Cluster (a node owning every slot: it refuses what a cluster refuses, and
// never redirects), as ApsaraDB for Redis / Tair cluster instances are behind their proxy.

let cluster: OwnRedis;
let admin: Redis;
beforeAll(async () => {
  cluster = await ownClusterRedis('cluster');
  admin = new Redis(cluster.url);
});
afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
});

const closers: (() => Promise<unknown>)[] = [];
async function closeAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}
afterEach(async () => {
  await closeAll();
  await admin.flushall();
});

const instance = (app: App, options: Partial<BullmqBackendOptions> = {}) =>
  clusterInstance(app, { connection: cluster.url, prefix: '{fc-async}', ...options }, closers);

const allKeys = () => scanKeys(admin);

const slotOf = async (key: string) => Number(await admin.call('CLUSTER', 'KEYSLOT', key));

describe('bullmq() on a Redis Cluster, its prefix a hash tag', () => {
  it('accepts, runs, retries, delays, stops, lists, watches and prunes tasks, every key of it in the tag’s slot', async () => {
    const worker = instance(app);
    const acceptor = instance(app, { worker: false });
    await acceptor.handler.engine?.whenReady();
    // The acceptor's dashboard: what the worker changes reaches it through BullMQ's event stream.
    const watched = new Set<string>();
    const unwatch = acceptor.handler.engine?.watchStore((ids) => {
      for (const id of ids) watched.add(id);
    });
    closers.push(async () => unwatch?.());

    expect((await acceptor.handler(asyncEvent('one'))).statusCode).toBe(202);
    const burst = Array.from({ length: 20 }, (_, i) => `burst_${i}`);
    const acceptedAt = Date.now();
    const answers = await Promise.all([
      ...burst.map((id) => acceptor.handler(asyncEvent(id))),
      acceptor.handler(asyncEvent('burst_3')),
      acceptor.handler(asyncEvent('later', {}, { 'X-Fc-Async-Delay': '1' })),
      acceptor.handler(asyncEvent('fails')),
      acceptor.handler(asyncEvent('slow')),
    ]);
    expect(answers.map((a) => a.statusCode)).toEqual([...burst.map(() => 202), 409, 202, 202, 202]);

    const succeeded = ['one', ...burst, 'later'];
    await stopSlowAndExpectEnds(worker, acceptor, succeeded);
    const later = await acceptor.handler.tasks.get('later');
    expect(later?.events.find((e) => e.status === 'Running')?.timestamp).toBeGreaterThanOrEqual(acceptedAt + 1000);

    // Filtered, in pages: the listing script reads the records of the ids it walks.
    const succeededBursts = await listAllTasks(
      { list: (query) => acceptor.handler.tasks.list({ ...query, status: 'Succeeded', prefix: 'burst_' }) },
      6,
    );
    expect(succeededBursts.map((t) => t.taskId).sort()).toEqual([...burst].sort());
    expect((await acceptor.handler.tasks.list({ status: 'Failed' })).tasks.map((t) => t.taskId)).toEqual(['fails']);
    await until('the watch to see the worker’s changes', () => succeeded.every((id) => watched.has(id)));

    // Another instance keeps 5 finished tasks: the others' records and index entries go.
    instance(app, { worker: false, maxTasks: 5, pruneIntervalMs: 50 });
    await until('retention to prune down to 5 tasks', async () => (await admin.zcard('{fc-async}:by-time')) === 5);
    expect(await listAllTasks(acceptor.handler.tasks, 2)).toHaveLength(5);

    await closeAll();
    const keys = await allKeys();
    expect(keys).toEqual(expect.arrayContaining(['{fc-async}:by-time', '{fc-async}:ended', '{fc-async}:tasks:events']));
    const tagSlot = await slotOf('fc-async');
    const elsewhere: string[] = [];
    for (const key of keys) if ((await slotOf(key)) !== tagSlot) elsewhere.push(key);
    expect(elsewhere).toEqual([]);
  });

  it('fails at once when the URL names a database other than 0, which a cluster does not have (ioredis would go on in db 0)', async () => {
    const backend = bullmq({ connection: `${cluster.url}/1`, prefix: '{fc-async}' });
    const failure = await Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger })).then(
      async ({ store, queue }) => {
        await queue.close?.();
        await store.close?.();
      },
      (error: unknown) => error as FcAsyncError,
    );
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message: 'Redis refused the database number of the connection',
    });
    expect((failure?.cause as Error | undefined)?.message).toMatch(/^ERR SELECT is not allowed in cluster mode/);
  });
});

describe('bullmq() on a Redis Cluster, its prefix without a hash tag', () => {
  it('fails its start saying why, where every accept was answered "retry later"', async () => {
    const { handler } = instance(app, { prefix: 'fc-async' });
    const message =
      'Redis runs in cluster mode, where the keys of prefix `fc-async` hash to different slots and every accept would be refused: make the prefix a hash tag, such as `{fc-async}`';
    const answer = await handler(asyncEvent('t_1'));
    // No Retry-After: trying again does not help.
    expect([answer.statusCode, answer.headers?.['retry-after'], JSON.parse(answer.body)]).toEqual([
      503,
      undefined,
      { code: 'RedisUnavailable', message },
    ]);
    await expect(handler.engine?.whenReady()).rejects.toMatchObject({ code: 'RedisUnavailable', message });
    expect(await allKeys()).toEqual([]);
  });

  it('answers a cross-slot refusal of an accept (a cluster its start did not see) as such, not "retry later"', async () => {
    // A proxy may not say it fronts a cluster: the store's own insert meets the refusal.
    const refused = await storeRefusal('fc-async');
    expect(refused).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message:
        'Redis runs in cluster mode and refused the task, its keys hashing to different slots: make the prefix a hash tag, such as `{fc-async}`',
    });
    expect(refused?.headers?.['retry-after']).toBeUndefined();
    expect((refused?.cause as Error | undefined)?.message).toMatch(/^CROSSSLOT /);
  });
});

/**
 * What a store on `prefix` throws when it inserts a task, or does `act` (`setup` given its
 * connection first).
 */
async function storeRefusal(
  prefix: string,
  setup?: (redis: Redis) => void,
  act: (store: RedisTaskStore) => Promise<unknown> = (store) => store.insert(taskRecord('t_1')),
): Promise<FcAsyncError | undefined> {
  const redis = new Redis(cluster.url);
  const store = new RedisTaskStore(redis, redis.duplicate(), keysOf(prefix));
  await store.listen();
  closers.push(() => store.close());
  setup?.(redis);
  return act(store).then(
    () => undefined,
    (error: unknown) => error as FcAsyncError,
  );
}

describe('bullmq() behind the proxy of an ApsaraDB for Redis / Tair cluster instance whose Lua check is on', () => {
  // The proxy's reply to a script using keys it was not passed (script_check_enable 1, the default),
  // as Alibaba Cloud's support and users of such instances quote it: the older text, and the newer.
  const refusal =
    'ERR bad lua script for redis cluster, all the keys that the script uses should be passed using the KEYS array';
  it.each([refusal, `${refusal}, and KEYS should not be in expression`])(
    'answers an accept it refuses (%s) naming script_check_enable, not "retry later"',
    async (reply) => {
      // The proxy answers in place of the insert's script: a script replying with its error, read
      // by ioredis as the proxy's reply would be.
      const lua = `return redis.error_reply(${JSON.stringify(reply)})`;
      const refused = await storeRefusal('{fc-async}', (redis) =>
        redis.defineCommand('fcAsyncInsert', { numberOfKeys: 5, lua }),
      );
      expect(refused).toMatchObject({
        code: 'RedisUnavailable',
        statusCode: 503,
        message:
          "Redis refused the task's script: the proxy of an ApsaraDB for Redis / Tair cluster instance checks that a script uses only the keys passed to it (`script_check_enable`, on by default), which BullMQ's and fc-async's scripts do not: set `script_check_enable` to 0 on the instance",
      });
      expect(refused?.headers?.['retry-after']).toBeUndefined();
      expect((refused?.cause as Error | undefined)?.message).toBe(reply);
    },
  );

  it('answers a listing it refuses naming script_check_enable too, not as an internal error', async () => {
    // The listing's script walks the index's entries and reads each task's key: refused likewise.
    const lua = `return redis.error_reply(${JSON.stringify(refusal)})`;
    const refused = await storeRefusal(
      '{fc-async}',
      (redis) => redis.defineCommand('fcAsyncList', { numberOfKeys: 1, lua }),
      (store) => store.list({ limit: 20 }),
    );
    expect(refused).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message:
        "Redis refused fc-async's script: the proxy of an ApsaraDB for Redis / Tair cluster instance checks that a script uses only the keys passed to it (`script_check_enable`, on by default), which BullMQ's and fc-async's scripts do not: set `script_check_enable` to 0 on the instance",
    });
    expect(refused?.headers?.['retry-after']).toBeUndefined();
    expect((refused?.cause as Error | undefined)?.message).toBe(refusal);
  });
});
