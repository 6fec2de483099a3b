import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import {
  $FC,
  type CliRun,
  fixture,
  localhostCertificate,
  redisCluster,
  redisServer,
  runCli,
  sdk,
  startCli,
  waitFor,
} from './helpers.js';

// `fc-async dev --redis-cluster`: the --redis URLs are startup nodes of a Redis Cluster in direct
// connection mode (three masters here, each answering its own slots and redirecting the rest), as
// an open-source Redis Cluster, ElastiCache cluster mode or ApsaraDB / Tair's direct connection.
// Before the flag, --redis naming one node started, then failed with `MOVED` at its first command.

const PASSWORD = 'cl-s3cret';

const stops: (() => Promise<void>)[] = [];
let nodes: string[];
beforeAll(async () => {
  nodes = await redisCluster((stop) => stops.push(stop), { password: PASSWORD });
}, 60_000);
afterAll(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const url of nodes) {
    const admin = new Redis(url, { password: PASSWORD });
    await admin.flushall();
    admin.disconnect();
  }
});

/** A node's URL with the cluster's password in it. */
const withPassword = (url: string) => url.replace('://', `://:${PASSWORD}@`);

async function dev(args: string[]): Promise<CliRun> {
  const cli = await startCli([fixture('jobs-app.ts'), '--name', 'app', ...args]);
  cleanups.push(() => cli.stop('SIGKILL'));
  return cli;
}

/** The keys of every node of the cluster. */
async function clusterKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const url of nodes) {
    const admin = new Redis(url, { password: PASSWORD });
    keys.push(...(await admin.keys('*')));
    admin.disconnect();
  }
  return keys;
}

describe('fc-async dev --redis-cluster', () => {
  it('serves async calls from a cluster in direct connection mode, the password given once applying to every node', async () => {
    // The second and the third node, the password in the first URL alone: '{fc-async}' lies in a
    // slot of the first node (1533, of 0-5460), which the client finds in the cluster's slot map.
    const [first, second, third] = nodes as [string, string, string];
    const owner = new Redis(first, { password: PASSWORD });
    cleanups.push(() => owner.disconnect());
    expect(await owner.call('CLUSTER', 'KEYSLOT', '{fc-async}')).toBe(1533);
    const cli = await dev(['--redis-cluster', '--redis', withPassword(second), '--redis', third]);
    const accepted = await fetch(`${cli.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'node_1' },
      body: JSON.stringify({ ms: 10 }),
    });
    expect(accepted.status).toBe(202);
    const client = sdk(cli.control);
    const task = await waitFor(async () => {
      const got = (await client.getAsyncTask('app', 'node_1', new $FC.GetAsyncTaskRequest({}))).body;
      return got?.status === 'Succeeded' ? got : undefined;
    }, 20_000);
    expect(task.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Succeeded']);
    const listed = await client.listAsyncTasks('app', new $FC.ListAsyncTasksRequest({}));
    expect(listed.body?.tasks?.map((t) => t.taskId)).toEqual(['node_1']);
    // Every key under the default prefix of a cluster, a hash tag: one slot, on the first node.
    const keys = await clusterKeys();
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((key) => !key.startsWith('{fc-async}:app:'))).toEqual([]);
    expect((await owner.keys('*')).length).toBe(keys.length);
    // The password is nowhere in what the emulator printed.
    expect(await cli.stop()).toBe(0);
    expect(JSON.stringify(cli.lines)).not.toContain(PASSWORD);
    expect(cli.stderr.join('')).not.toContain(PASSWORD);
  });

  it('startEmulator({ redis: [...], redisCluster: true }) takes a prefix that is a hash tag of its own', async () => {
    const emulator = await startEmulator({
      entry: fixture('jobs-app.ts'),
      name: 'app',
      redis: nodes.map(withPassword),
      redisCluster: true,
      redisPrefix: 'eu:{jobs}',
      port: 0,
      controlPort: 0,
      output: () => {},
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const accepted = await fetch(`${emulator.triggerUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'own_1' },
      body: JSON.stringify({ ms: 10 }),
    });
    expect(accepted.status).toBe(202);
    const client = sdk(emulator.controlUrl);
    await waitFor(async () => {
      const got = (await client.getAsyncTask('app', 'own_1', new $FC.GetAsyncTaskRequest({}))).body;
      return got?.status === 'Succeeded' ? got : undefined;
    }, 20_000);
    const keys = await clusterKeys();
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((key) => !key.startsWith('eu:{jobs}:app:'))).toEqual([]);
  });

  it('no node answering: the start fails naming the cluster by its nodes, the password masked', async () => {
    const { code, stderr } = await runCli([
      'dev',
      fixture('jobs-app.ts'),
      '--redis-cluster',
      '--redis',
      `redis://:${PASSWORD}@127.0.0.1:1`,
      '--port',
      '0',
      '--control-port',
      '0',
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^fc-async: The Redis Cluster at 127\.0\.0\.1:1 is not ready \(RedisUnavailable\): /m);
    expect(stderr).not.toContain(PASSWORD);
  });
});

describe('fc-async dev --redis-cluster with rediss://', () => {
  it('reaches every node over TLS by the host name its certificate names, the slot map’s nodes too', async () => {
    // Without keeping the name, ioredis connected to the address localhost resolves to, which the
    // certificate does not name: the start failed, `Redis did not answer within 10000 ms (Failed
    // to refresh slots cache.)`.
    const tls = localhostCertificate((remove) => cleanups.push(remove));
    const tlsNodes = await redisCluster((stop) => cleanups.push(stop), { password: PASSWORD, tls });
    const cli = await startCli(
      [fixture('jobs-app.ts'), '--name', 'app', '--redis-cluster', '--redis', withPassword(tlsNodes[1] as string)],
      { env: { NODE_EXTRA_CA_CERTS: tls.ca } },
    );
    cleanups.push(() => cli.stop('SIGKILL'));
    const accepted = await fetch(`${cli.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'tls_1' },
      body: JSON.stringify({ ms: 10 }),
    });
    expect(accepted.status).toBe(202);
    const client = sdk(cli.control);
    await waitFor(async () => {
      const got = (await client.getAsyncTask('app', 'tls_1', new $FC.GetAsyncTaskRequest({}))).body;
      return got?.status === 'Succeeded' ? got : undefined;
    }, 20_000);
    expect(cli.stderr.join('')).not.toContain(PASSWORD);
  });
});

describe('fc-async dev --redis-cluster on a Redis that is no cluster', () => {
  it('fails the start at once, saying to give its --redis URL alone', async () => {
    // Without it, the start waited 10 s for a slot map and said `Redis did not answer`.
    const { url } = await redisServer((stop) => cleanups.push(stop));
    const { code, stderr } = await runCli([
      'dev',
      fixture('jobs-app.ts'),
      '--redis-cluster',
      '--redis',
      url,
      '--port',
      '0',
      '--control-port',
      '0',
    ]);
    expect(code).toBe(1);
    expect(stderr.split('\n').filter((line) => line.startsWith('fc-async:'))).toEqual([
      `fc-async: The Redis Cluster at ${new URL(url).host} is not ready (RedisUnavailable): Redis does not run in cluster mode: give its --redis URL alone, without --redis-cluster (ERR This instance has cluster support disabled)`,
    ]);
  });
});

describe('fc-async dev --redis-cluster refusals', () => {
  const refused = (args: string[]) =>
    runCli(['dev', fixture('jobs-app.ts'), ...args, '--port', '0', '--control-port', '0']);

  it.each([
    [
      'without --redis',
      ['--redis-cluster'],
      'fc-async: `--redis-cluster` makes the `--redis` URLs startup nodes of a Redis Cluster: give one or more with `--redis URL`\n',
    ],
    [
      'several --redis without it',
      ['--redis', 'redis://127.0.0.1:1', '--redis', 'redis://127.0.0.1:2'],
      'fc-async: Pass one `--redis` URL (got 2): several are the nodes of a Redis Cluster in direct connection mode, which `--redis-cluster` reaches\n',
    ],
    [
      'a prefix without a hash tag',
      ['--redis-cluster', '--redis', 'redis://127.0.0.1:1', '--redis-prefix', 'fc-async'],
      'fc-async: Expected `--redis-prefix` to be a hash tag such as `{fc-async}` with a Redis Cluster (`--redis-cluster`), so that every key of it lies in one slot, got `fc-async`\n',
    ],
    [
      'a database other than 0',
      ['--redis-cluster', '--redis', `redis://:${PASSWORD}@127.0.0.1:1/2`],
      'fc-async: Expected `--redis` to name database 0 or none with `--redis-cluster` (a Redis Cluster has no other), got `redis://***@127.0.0.1:1/2`\n',
    ],
    [
      'two passwords',
      ['--redis-cluster', '--redis', `redis://:${PASSWORD}@127.0.0.1:1`, '--redis', 'redis://:other-pw@127.0.0.1:2'],
      'fc-async: Expected the `--redis` URLs of `--redis-cluster` to carry the same user name and password, or only one of them to carry any: every node of the cluster is reached with them\n',
    ],
    [
      'TLS on one node alone',
      ['--redis-cluster', '--redis', 'rediss://127.0.0.1:1', '--redis', 'redis://127.0.0.1:2'],
      'fc-async: Expected the `--redis` URLs of `--redis-cluster` to be all redis:// or all rediss://: TLS applies to every node of the cluster\n',
    ],
    [
      'nodes in one value',
      ['--redis-cluster', '--redis', `redis://:${PASSWORD}@127.0.0.1:1,redis://127.0.0.1:2`],
      'fc-async: Expected each `--redis` to be one URL, got `redis://***@127.0.0.1:1,redis://127.0.0.1:2`: give each node of the cluster its own `--redis`\n',
    ],
  ])('%s: one line, exit code 1, no password', async (_, args, message) => {
    for (const watch of [[], ['--watch']]) {
      const { code, stderr } = await refused([...watch, ...args]);
      expect([code, stderr]).toEqual([1, message]);
    }
  });
});
