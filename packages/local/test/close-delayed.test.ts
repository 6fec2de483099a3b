import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTask } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { startEcho } from './helpers.js';

// Ctrl-C (and each `--watch` restart) closes the emulator with `--shutdown-timeout`: a task delayed
// past it must not hold the close for all of it. Each close below is given 60 s in a test given
// 20 s: the test ends only if the close did not wait for its timeout.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Sends an async request delayed by nearly an hour; its task id. */
async function delayed(emulator: Emulator): Promise<string> {
  const res = await fetch(`${emulator.triggerUrl}/later`, {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '3599' },
    body: 'x',
  });
  expect(res.status).toBe(202);
  return res.headers.get('x-fc-async-task-id') as string;
}

async function task(emulator: Emulator, taskId: string): Promise<AsyncTask> {
  const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-tasks/${taskId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as AsyncTask;
}

describe('emulator close() with a task delayed past its timeout', () => {
  it('memory: ends without waiting for the timeout', { timeout: 20_000 }, async () => {
    const emulator = await startEcho();
    await delayed(emulator);
    await expect(emulator.close({ timeoutMs: 60_000 })).resolves.toBeUndefined();
  });

  it('sqlite: ends without waiting for the timeout, and the next start still has the task', {
    timeout: 20_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-close-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = `sqlite:${join(dir, 'tasks.db')}`;
    const first = await startEcho({ store });
    const taskId = await delayed(first);
    await expect(first.close({ timeoutMs: 60_000 })).resolves.toBeUndefined();

    const second = await startEcho({ store });
    cleanups.push(() => second.close({ timeoutMs: 100 }));
    expect(await task(second, taskId)).toMatchObject({ taskId, status: 'Enqueued' });
  });
});
