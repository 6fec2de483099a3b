import { fileURLToPath } from 'node:url';
import { startEmulator } from '@fc-async/local';
import type { WorkStats } from './app.js';
import { firePulse, type Shot } from './load.js';

export interface PulseRun {
  /** Async attempts running at once (the emulator's `--concurrency`). */
  concurrency: number;
  /** Tasks waiting before new async requests get 429 (`--max-queued-tasks`). */
  maxQueuedTasks: number;
  /** Requests in the pulse, sent evenly over `overMs`. */
  count: number;
  overMs: number;
  /** Work per task, ms. @default 20 to 50, at random */
  workMs?: number;
  /** Give up waiting for the tasks after this long. @default 60000 */
  timeoutMs?: number;
}

export interface PulseReport {
  sent: number;
  /** 202: queued. */
  accepted: number;
  /** 429: the queue was full; nothing was queued. */
  rejected: number;
  /** Rejections that told the caller when to come back (`Retry-After`). */
  rejectedWithRetryAfter: number;
  /** Answers other than 202 and 429, by status (none expected). */
  otherStatuses: Record<number, number>;
  /** Accepted tasks that ended `Succeeded`. */
  completed: number;
  /** Accepted tasks that ended otherwise (`Failed`, `Expired`, ...). */
  failed: number;
  /** Completed tasks per second, from the first 202 to the last task's end. */
  throughput: number;
  /** Most attempts the app saw running at once. */
  maxConcurrency: number;
  concurrency: number;
  /** How long sending the pulse took, ms. */
  pulseMs: number;
}

interface TaskView {
  taskId: string;
  status: string;
  startedTime: number;
  endTime?: number;
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid']);

/**
 * Starts the emulator on free loopback ports with `src/app.ts` as the function, fires the pulse at
 * its HTTP trigger, waits (through the FC API on the control port, as a client of FC would) until
 * every accepted task has ended, and reports.
 */
export async function runPulse(run: PulseRun): Promise<PulseReport> {
  const emulator = await startEmulator({
    entry: fileURLToPath(new URL('./app.ts', import.meta.url)),
    port: 0,
    controlPort: 0,
    concurrency: run.concurrency,
    maxQueuedTasks: run.maxQueuedTasks,
    // One log line per request and per attempt would bury the summary: `npm run dev` shows them.
    output: () => {},
  });
  try {
    const fn = emulator.functions[0] as string;
    const started = performance.now();
    const shots = await firePulse({
      url: `${emulator.triggerUrl}/work`,
      count: run.count,
      overMs: run.overMs,
      body: run.workMs === undefined ? {} : { ms: run.workMs },
    });
    const pulseMs = performance.now() - started;
    const accepted = shots.filter((s) => s.status === 202);
    const tasks = await waitForTasks(emulator.controlUrl, fn, accepted, run.timeoutMs ?? 60_000);
    const stats = (await (await fetch(`${emulator.triggerUrl}/stats`)).json()) as WorkStats;
    return report(run, shots, tasks, stats, pulseMs);
  } finally {
    await emulator.close();
  }
}

/** ListAsyncTasks (FC API 2023-03-30), page after page, until every accepted task has ended. */
async function waitForTasks(control: string, fn: string, accepted: Shot[], timeoutMs: number): Promise<TaskView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tasks: TaskView[] = [];
    let nextToken: string | undefined;
    do {
      const query = new URLSearchParams({ prefix: 'pulse_', limit: '100', ...(nextToken ? { nextToken } : {}) });
      const page = (await (await fetch(`${control}/2023-03-30/functions/${fn}/async-tasks?${query}`)).json()) as {
        tasks: TaskView[];
        nextToken?: string;
      };
      tasks.push(...page.tasks);
      nextToken = page.nextToken;
    } while (nextToken);
    const ended = tasks.filter((t) => TERMINAL.has(t.status));
    if (ended.length >= accepted.length) return ended;
    if (Date.now() > deadline) {
      throw new Error(`${accepted.length - ended.length} accepted tasks had not ended after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function report(run: PulseRun, shots: Shot[], tasks: TaskView[], stats: WorkStats, pulseMs: number): PulseReport {
  const rejected = shots.filter((s) => s.status === 429);
  const otherStatuses: Record<number, number> = {};
  for (const s of shots)
    if (s.status !== 202 && s.status !== 429) otherStatuses[s.status] = (otherStatuses[s.status] ?? 0) + 1;
  const completed = tasks.filter((t) => t.status === 'Succeeded');
  const first = Math.min(...tasks.map((t) => t.startedTime));
  const last = Math.max(...tasks.map((t) => t.endTime ?? t.startedTime));
  return {
    sent: shots.length,
    accepted: shots.length - rejected.length - Object.values(otherStatuses).reduce((a, b) => a + b, 0),
    rejected: rejected.length,
    rejectedWithRetryAfter: rejected.filter((s) => s.retryAfter !== undefined).length,
    otherStatuses,
    completed: completed.length,
    failed: tasks.length - completed.length,
    throughput: last > first ? (completed.length * 1000) / (last - first) : 0,
    maxConcurrency: stats.maxRunning,
    concurrency: run.concurrency,
    pulseMs,
  };
}
