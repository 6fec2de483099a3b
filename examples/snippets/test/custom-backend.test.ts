import { fcHttpEvent } from '@fc-async/core';
import { expect, it, vi } from 'vitest';
import { handlerOn } from '../src/custom-backend.js';
import { memoryTable } from '../src/memory-table.js';

const exportCall = (taskId: string, delaySeconds?: number) =>
  fcHttpEvent({
    method: 'POST',
    url: '/exports',
    body: { table: 'orders' },
    headers: {
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': taskId,
      ...(delaySeconds ? { 'x-fc-async-delay': String(delaySeconds) } : {}),
    },
  });

it('the task table backend runs tasks, answers the task API and keeps what is unfinished for the next start', async () => {
  const table = memoryTable();
  const first = handlerOn(table);
  expect((await first(exportCall('now'))).statusCode).toBe(202);
  expect((await first(exportCall('now'))).statusCode).toBe(409);
  expect((await first(exportCall('later', 1))).statusCode).toBe(202);
  // Until its attempt ends, bounded: a task that fails (or never runs) fails the test with its status.
  const now = await vi.waitFor(
    async () => {
      const task = await first.tasks.get('now');
      if (!task || ['Enqueued', 'Running'].includes(task.status)) throw new Error(`task now is ${task?.status}`);
      return task;
    },
    { timeout: 15_000, interval: 5 },
  );
  expect(now.status).toBe('Succeeded');
  expect(now.returnPayload).toBe('{"table":"orders"}');
  await first.close({ timeoutMs: 0 }); // persistent: the delayed task stays for the next start
  expect(table.rows.get('later')?.record.status).toBe('Enqueued');
  const second = handlerOn(table);
  await second.engine?.whenReady();
  await second.drain();
  const { tasks } = await second.tasks.list({ sortOrderByTime: 'asc' });
  expect(tasks.map((t) => `${t.taskId} ${t.status}`)).toEqual(['now Succeeded', 'later Succeeded']);
  await second.close();
});
