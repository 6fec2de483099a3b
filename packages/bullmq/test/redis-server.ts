import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '@fc-async/test-kit/net';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** Resolves once redis-server says it is ready; rejects when it exits first or takes over 10 s. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start within 10 s')), 10_000);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (line.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === 'ENOENT'
          ? new Error('redis-server is not installed: install the Debian package redis-server (see .ci/apt-packages)')
          : error,
      );
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with code ${code} before it was ready`));
    });
  });
}

/**
 * A redis-server on `port` with its files in `dir`, no RDB snapshots, resolved once it accepts
 * connections (killed if it does not); `extra` adds arguments (persistence, say).
 */
export async function spawnRedis(port: number, dir: string, extra: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...extra],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    await ready(child);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  child.stdout?.resume();
  return child;
}

/** A redis-server of one test file or one test alone (see {@link ownRedis}). */
export interface OwnRedis {
  child: ChildProcess;
  port: number;
  url: string;
  /** Kills it (stopped with SIGSTOP or not) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * A redis-server on a free loopback port in a fresh temporary folder (`fc-async-NAME-redis-*`),
 * no persistence unless `extra` says otherwise: for tests that pause, stop or kill Redis, which
 * the run's shared one must not be (its other files' short job locks would expire under them).
 */
export async function ownRedis(name: string, extra: readonly string[] = ['--appendonly', 'no']): Promise<OwnRedis> {
  const dir = mkdtempSync(join(tmpdir(), `fc-async-${name}-redis-`));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await spawnRedis(port, dir, extra);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    child,
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A redis-server as {@link ownRedis}, in cluster mode and owning every slot: a cluster of one node,
 * which refuses a command or script whose declared keys hash to different slots (`CROSSSLOT`), as
 * any Redis Cluster does, and answers the others itself (no `MOVED`), so a plain client serves.
 * Resolved once the cluster says it is up (`cluster_state:ok`).
 */
export async function ownClusterRedis(name: string): Promise<OwnRedis> {
  // The cluster bus listens on a port of its own: chosen free too, not the default port + 10000.
  const busPort = await freePort();
  const own = await ownRedis(name, clusterNodeArgs(busPort));
  const admin = new Redis(own.url);
  try {
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    const deadline = Date.now() + 10_000;
    while (!((await admin.call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error('the cluster did not come up within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await own.stop();
    throw error;
  } finally {
    admin.disconnect();
  }
  return own;
}

/** A Redis Cluster of several nodes (see {@link ownRedisCluster}). */
export interface OwnRedisCluster {
  nodes: OwnRedis[];
  /** Kills every node and removes their folders. */
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `size` masters on free loopback ports (no replicas, no persistence), the 16384
 * slots split evenly in port order, as a cluster in direct connection mode is: a client that sends a
 * command to a node not owning its keys' slot gets `MOVED`. Resolved once every node says the
 * cluster is up (`cluster_state:ok`).
 */
export async function ownRedisCluster(name: string, size = 3): Promise<OwnRedisCluster> {
  const nodes: OwnRedis[] = [];
  const stop = async () => {
    for (const node of nodes) await node.stop();
  };
  const admins: Redis[] = [];
  try {
    const busPorts: number[] = [];
    for (let i = 0; i < size; i++) {
      const busPort = await freePort();
      busPorts.push(busPort);
      nodes.push(await ownRedis(`${name}-${i}`, clusterNodeArgs(busPort)));
    }
    for (const node of nodes) admins.push(new Redis(node.url));
    const [first] = admins as [Redis];
    for (const [i, node] of nodes.entries()) {
      if (i > 0) await first.call('CLUSTER', 'MEET', '127.0.0.1', String(node.port), String(busPorts[i]));
    }
    const ranges = slotRanges(size);
    for (const [i, admin] of admins.entries()) {
      const [from, to] = ranges[i] as [number, number];
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', String(from), String(to));
    }
    await untilClusterUp(admins);
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    for (const admin of admins) admin.disconnect();
  }
}

/** A cluster node's arguments: no persistence, its bus on `busPort` (see ownClusterRedis). */
function clusterNodeArgs(busPort: number): string[] {
  return [
    '--appendonly',
    'no',
    '--cluster-enabled',
    'yes',
    '--cluster-port',
    String(busPort),
    '--cluster-config-file',
    'nodes.conf',
  ];
}

/** The 16384 slots in `size` ranges as even as they divide. */
function slotRanges(size: number): [number, number][] {
  return Array.from({ length: size }, (_, i) => [
    Math.floor((i * 16_384) / size),
    Math.floor(((i + 1) * 16_384) / size) - 1,
  ]);
}

/** Resolves once every node says `cluster_state:ok` and knows every other (the gossip has spread). */
async function untilClusterUp(admins: readonly Redis[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const infos = await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'INFO') as Promise<string>));
    const up = infos.every(
      (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${admins.length}`),
    );
    if (up) return;
    if (Date.now() > deadline) throw new Error('the cluster did not come up within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Vitest global setup: a throwaway redis-server on a free loopback port, no persistence, in a
 * temporary folder; stopped after the run. Tests read its URL with `inject('redisUrl')`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await spawnRedis(port, dir, ['--appendonly', 'no']);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  project.provide('redisUrl', `redis://127.0.0.1:${port}`);
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A redis-server that does not stop within 10 s (a save that hangs) is killed: the run ends.
      const hung = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hung);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
