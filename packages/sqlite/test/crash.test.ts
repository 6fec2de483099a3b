import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AsyncTask, DestinationRecord } from '@fc-async/core';
import { firstLine } from '@fc-async/test-kit/wait';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const SERVER = fileURLToPath(new URL('./fixtures/server.ts', import.meta.url));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Starts the function in a child process; resolves with it and its port. */
async function startFunction(file: string, destination: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, file, destination], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  // A child that dies before it listens fails the test at once, not at its timeout.
  const line = await firstLine(child);
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function tasksOf(port: number): Promise<AsyncTask[]> {
  const response = await fetch(`http://127.0.0.1:${port}/_tasks`);
  return (await response.json()) as AsyncTask[];
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid']);

describe('sqlite(): a function killed with SIGKILL mid-burst, then restarted', () => {
  it('every 202 reaches a terminal status and exactly one destination call; no 429 or connection error counts as accepted', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = join(dir, 'tasks.db');

    // The destination: counts acknowledged deliveries per task. While `paused` it holds them
    // unanswered, so that a delivery is either acknowledged and recorded by the function, or
    // cut by the kill and made again after the restart.
    const acked = new Map<string, number>();
    const held: ServerResponse[] = [];
    let paused = false;
    const receiver: Server = createServer(async (req, res) => {
      const record = JSON.parse(await readBody(req)) as DestinationRecord;
      const taskId = JSON.parse(record.requestPayload).headers['x-fc-async-task-id'] as string;
      if (paused) {
        held.push(res);
        return;
      }
      acked.set(taskId, (acked.get(taskId) ?? 0) + 1);
      res.end();
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    cleanups.push(() => new Promise((resolve) => receiver.close(resolve)));
    receiver.unref();
    const destination = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/fc`;

    const first = await startFunction(file, destination);
    const accepted = new Set<string>();
    const throttled = new Set<string>();
    const failed = new Set<string>();
    let ackedAtKill = -1;
    let killing: Promise<void> | undefined;
    let killed = false;
    const kill = async () => {
      paused = true;
      // Held deliveries keep their tasks counted against maxQueuedTasks, so the clients, still
      // sending, meet a 429 however fast this machine runs the tasks: the kill comes after one.
      await until('a 429 once the held deliveries fill the queue', () => throttled.size > 0);
      await until('the function to record every acknowledged delivery', async () => {
        const delivered = new Set((await tasksOf(first.port)).filter((t) => t.destinationStatus).map((t) => t.taskId));
        return [...acked.keys()].every((id) => delivered.has(id));
      });
      ackedAtKill = acked.size;
      killed = true;
      first.child.kill('SIGKILL');
    };

    // The burst: 8 clients, each request with its own task id, sending until the kill cuts them
    // (the kill comes once 80 are accepted). Bounded by a number of requests, not by when 80 are
    // accepted: a fast machine once answered 1,500 of them (nearly all 429) before 80 were accepted.
    let next = 0;
    const client = async () => {
      while (next < 50_000) {
        const taskId = `t_${next++}`;
        try {
          const response = await fetch(`http://127.0.0.1:${first.port}/jobs`, {
            method: 'POST',
            headers: {
              'x-fc-invocation-type': 'Async',
              'x-fc-async-task-id': taskId,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ taskId }),
          });
          await response.arrayBuffer();
          if (response.status === 202) accepted.add(taskId);
          else if (response.status === 429) throttled.add(taskId);
          else throw new Error(`Unexpected status ${response.status}`);
        } catch (error) {
          if ((error as Error).message.startsWith('Unexpected')) throw error;
          failed.add(taskId);
          if (killed) return;
        }
        if (accepted.size >= 80 && !killing) killing = kill();
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    expect(killing, 'the burst ended before 80 requests were accepted').toBeDefined();
    await killing;
    if (first.child.exitCode === null && first.child.signalCode === null) await once(first.child, 'exit');
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(throttled.size).toBeGreaterThan(0);
    expect(failed.size).toBeGreaterThan(0);
    expect(accepted.size).toBeGreaterThan(ackedAtKill);

    paused = false;
    for (const res of held) res.destroy();
    const second = await startFunction(file, destination);
    let tasks: AsyncTask[] = [];
    await until('every accepted task to end and be delivered', async () => {
      tasks = await tasksOf(second.port);
      const done = new Set(tasks.filter((t) => TERMINAL.has(t.status) && t.destinationStatus).map((t) => t.taskId));
      // Every accepted task, and every task committed by a request the kill cut short, must end.
      const all = [...accepted, ...tasks.map((t) => t.taskId)];
      return all.every((id) => done.has(id) && acked.has(id));
    });
    const byId = new Map(tasks.map((t) => [t.taskId, t]));
    for (const id of accepted) {
      expect(byId.get(id)?.status, id).toBe('Succeeded');
      expect(acked.get(id), id).toBe(1);
    }
    for (const id of throttled) {
      expect(byId.has(id), id).toBe(false);
      expect(acked.has(id), id).toBe(false);
    }
    // A request cut by the kill may have been committed without its 202 reaching the client:
    // it is not counted as accepted, but it runs like any other task.
    for (const task of tasks) {
      expect(accepted.has(task.taskId) || failed.has(task.taskId), task.taskId).toBe(true);
      expect(acked.get(task.taskId), task.taskId).toBe(1);
    }
    second.child.kill('SIGTERM');
  }, 90_000);
});
