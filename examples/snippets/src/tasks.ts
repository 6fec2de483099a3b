import { createHandler, getInvocation } from '@fc-async/express';
import express from 'express';

const app = express();
app.post('/exports', express.json(), async (req, res) => {
  const { signal, attempt } = getInvocation(req)!;
  // Long work: honour the signal (stop or timeout) and expect to run again (at least once).
  const file = await buildExport(req.body.table, signal);
  res.json({ file, attempt });
});

async function buildExport(table: string, signal: AbortSignal): Promise<string> {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 100);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  });
  return `${table}.csv`;
}

export const handler = createHandler(app, {
  async: { concurrency: 4, maxAsyncRetryAttempts: 2, maxAsyncEventAgeInSeconds: 3600, timeoutSeconds: 900 },
});

// The task API, in-process (local mode): what FC's GetAsyncTask / ListAsyncTasks / StopAsyncTask do.
export async function report(): Promise<void> {
  const { tasks, nextToken } = await handler.tasks.list({ status: 'Running', prefix: 'export_', limit: 20 });
  for (const task of tasks) console.log(task.taskId, task.status, task.alreadyRetriedTimes);
  if (tasks[0]) await handler.tasks.stop(tasks[0].taskId);
  if (nextToken) console.log('more:', nextToken);
}
