import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { $FC, type CliRun, fixture, redisServer, sdk, startCli, waitFor } from './helpers.js';

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
