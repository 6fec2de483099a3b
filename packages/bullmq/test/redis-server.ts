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
  const own = await ownRedis(name, [
    '--appendonly',
    'no',
    '--cluster-enabled',
    'yes',
    '--cluster-port',
    String(busPort),
    '--cluster-config-file',
    'nodes.conf',
  ]);
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
