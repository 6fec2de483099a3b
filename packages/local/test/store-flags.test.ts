import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { freePort } from '../src/ports.js';
import { $FC, type CliRun, fixture, redisServer, runCli, sdk, startCli, waitFor } from './helpers.js';

// The real @fc-async/sqlite and @fc-async/bullmq behind `--store sqlite:PATH` and `--redis URL`
// (test/backend.test.ts covers the flags' parsing and a missing package).

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function dev(args: string[]): Promise<CliRun> {
  const cli = await startCli([fixture('jobs-app.ts'), '--name', 'app', ...args]);
  cleanups.push(() => cli.stop('SIGKILL'));
  return cli;
}

function post(cli: CliRun, taskId: string, headers: Record<string, string> = {}) {
  return fetch(`${cli.trigger}/jobs`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': taskId,
      ...headers,
    },
    body: JSON.stringify({ ms: 10 }),
  });
}

function succeeded(cli: CliRun, taskId: string) {
  const client = sdk(cli.control);
  return waitFor(async () => {
    const task = (await client.getAsyncTask('app', taskId, new $FC.GetAsyncTaskRequest({}))).body;
    return task?.status === 'Succeeded' ? task : undefined;
  }, 20_000);
}

/** A throwaway redis-server, stopped after the test. */
const redisUrl = async () => (await redisServer((stop) => cleanups.push(stop))).url;

describe('fc-async dev --store sqlite:PATH', () => {
  it('startEmulator({ cwd }): a relative sqlite:PATH starts at cwd, as --out-dir does', async () => {
    const cwd = tempDir();
    // A name of its own, removed after: without the fix it is made in the process's working folder.
    const folder = basename(cwd);
    cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
    const emulator = await startEmulator({
      cwd,
      entry: fixture('jobs-app.ts'),
      name: 'app',
      store: `sqlite:${folder}/tasks.db`,
      port: 0,
      controlPort: 0,
      output: () => {},
    });
    await emulator.close({ timeoutMs: 1000 });
    expect(readdirSync(join(cwd, folder))).toContain('tasks.db');
    expect(existsSync(folder)).toBe(false);
  });

  it('keeps accepted tasks in the file: a task accepted before a SIGKILL runs after the restart', async () => {
    const store = `sqlite:${join(tempDir(), 'tasks.db')}`;
    const first = await dev(['--store', store]);
    const accepted = await post(first, 'durable_1', { 'x-fc-async-delay': '1' });
    expect(accepted.status).toBe(202);
    await first.stop('SIGKILL');
    const second = await dev(['--store', store]);
    const task = await succeeded(second, 'durable_1');
    expect(task.requestId).toBe(accepted.headers.get('x-fc-request-id'));
    expect(task.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Succeeded']);
  });
});

describe('fc-async dev --redis URL', () => {
  it('queues through BullMQ: a task accepted by one emulator is listed by another on the same Redis', async () => {
    const redis = await redisUrl();
    const one = await dev(['--redis', redis]);
    const two = await dev(['--redis', redis]);
    expect((await post(one, 'shared_1')).status).toBe(202);
    await succeeded(two, 'shared_1');
    const listed = await sdk(two.control).listAsyncTasks('app', new $FC.ListAsyncTasksRequest({}));
    expect(listed.body?.tasks?.map((t) => t.taskId)).toEqual(['shared_1']);
    expect((await post(two, 'shared_1')).status).toBe(409);
  });

  it('a StopAsyncTask sent with the SDK to one emulator aborts the attempt running on another', async () => {
    const redis = await redisUrl();
    const one = await dev(['--redis', redis]);
    const accepted = await fetch(`${one.trigger}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'far_1' },
      body: JSON.stringify({ ms: 120_000 }),
    });
    expect(accepted.status).toBe(202);
    // Running on the first emulator before the second one starts: the second never had the job.
    await waitFor(async () => {
      const task = (await sdk(one.control).getAsyncTask('app', 'far_1', new $FC.GetAsyncTaskRequest({}))).body;
      return task?.status === 'Running' ? task : undefined;
    }, 20_000);
    const two = await dev(['--redis', redis]);
    await sdk(two.control).stopAsyncTask('app', 'far_1', new $FC.StopAsyncTaskRequest({}));
    const stopped = await waitFor(async () => {
      const task = (await sdk(two.control).getAsyncTask('app', 'far_1', new $FC.GetAsyncTaskRequest({}))).body;
      return task?.status === 'Stopped' ? task : undefined;
    }, 20_000);
    expect(stopped.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
    // The attempt ended on the first emulator, long before its 120 s, and ran nowhere else.
    const attempt = await waitFor(() => one.lines.find((l) => l.kind === 'attempt' && l.taskId === 'far_1'), 20_000);
    expect(attempt.status).toBe('Stopped');
    expect(two.lines.filter((l) => l.kind === 'attempt' && l.taskId === 'far_1')).toEqual([]);
  });
});

/**
 * A throwaway redis-server in cluster mode owning every slot (a cluster of one node, stopped after
 * the test): it refuses what any Redis Cluster refuses, keys across slots (`CROSSSLOT`).
 */
async function clusterRedisUrl(): Promise<string> {
  const busPort = await freePort('127.0.0.1');
  const { url } = await redisServer((stop) => cleanups.push(stop), {
    args: ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', 'nodes.conf'],
  });
  const admin = new Redis(url);
  try {
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    // `|| undefined`: waitFor waits while its probe gives undefined (false would end it at once).
    await waitFor(
      async () => ((await admin.call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok') || undefined,
      10_000,
    );
  } finally {
    admin.disconnect();
  }
  return url;
}

describe('fc-async dev --redis URL --redis-prefix PREFIX', () => {
  it('runs on a Redis Cluster with a prefix that is a hash tag, every key under <prefix>:<function>', async () => {
    const redis = await clusterRedisUrl();
    const cli = await dev(['--redis', redis, '--redis-prefix', '{fc-async}']);
    expect((await post(cli, 'tagged_1')).status).toBe(202);
    await succeeded(cli, 'tagged_1');
    const admin = new Redis(redis);
    cleanups.push(() => admin.disconnect());
    const keys = await admin.keys('*');
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((key) => !key.startsWith('{fc-async}:app:'))).toEqual([]);
  });

  it('without it, a start on a Redis Cluster fails naming the flag that gives the prefix a hash tag', async () => {
    const redis = await clusterRedisUrl();
    const { code, stderr } = await runCli([
      'dev',
      fixture('jobs-app.ts'),
      '--name',
      'app',
      '--redis',
      redis,
      '--port',
      '0',
      '--control-port',
      '0',
    ]);
    expect(code).toBe(1);
    expect(stderr).toContain(
      'Redis runs in cluster mode, where the keys of prefix `fc-async:app` hash to different slots',
    );
    expect(stderr).toContain(
      "fc-async dev takes it as --redis-prefix '{fc-async}' (each function's prefix is then `{fc-async}:<function>`)",
    );
  });

  it.each([[[]], [['--watch']]])(
    'refuses a prefix bullmq() refuses, in one line with exit code 1 (%j)',
    async (watch) => {
      // Checked before Redis is asked: nothing listens on port 1.
      const { code, stderr } = await runCli([
        'dev',
        fixture('jobs-app.ts'),
        ...watch,
        '--redis',
        'redis://127.0.0.1:1',
        '--redis-prefix',
        '{fc-async',
        '--port',
        '0',
        '--control-port',
        '0',
      ]);
      expect([code, stderr]).toEqual([
        1,
        "fc-async: Expected `--redis-prefix` to be 1 to 53 letters, digits, '_', '.', ':' or '-', with at most one hash tag such as `{fc-async}`, got `{fc-async`\n",
      ]);
    },
  );

  it('refuses it without --redis', async () => {
    const { code, stderr } = await runCli([
      'dev',
      fixture('jobs-app.ts'),
      '--redis-prefix',
      '{fc-async}',
      '--port',
      '0',
      '--control-port',
      '0',
    ]);
    expect([code, stderr]).toEqual([
      1,
      'fc-async: `--redis-prefix` names the prefix of the tasks in Redis: give it with `--redis URL`\n',
    ]);
  });
});
