import PQueue from 'p-queue';
import type { AsyncTaskStatus } from '../fc-types.js';
import {
  type AsyncBackend,
  type JobResult,
  type QueueDriver,
  type QueueJob,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
} from './backend.js';
import { pageTasks } from './paging.js';

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;

/**
 * Options of the in-memory backend.
 *
 * @example
 * ```ts
 * memory({ maxTasks: 50_000, retentionMs: 24 * 3600 * 1000 });
 * ```
 */
export interface MemoryBackendOptions {
  /** Finished tasks kept; past it the oldest finished go first. Unfinished tasks are never dropped. @default 10000 */
  maxTasks?: number;
  /** How long a finished task is kept. @default 7 days */
  retentionMs?: number;
}

/**
 * Task records in a Map: fast, bounded (see {@link MemoryBackendOptions}), and gone when the
 * process exits.
 */
export class MemoryTaskStore implements TaskStore {
  private readonly tasks = new Map<string, TaskRecord>();
  /** Finished task ids in the order they finished, with their end time. */
  private readonly finished = new Map<string, number>();
  private readonly maxTasks: number;
  private readonly retentionMs: number;

  constructor(options: MemoryBackendOptions = {}) {
    this.maxTasks = options.maxTasks ?? 10_000;
    this.retentionMs = options.retentionMs ?? SEVEN_DAYS_MS;
  }

  insert(record: TaskRecord): boolean {
    if (this.tasks.has(record.taskId)) return false;
    this.tasks.set(record.taskId, record);
    return true;
  }

  get(taskId: string): TaskRecord | undefined {
    return this.tasks.get(taskId);
  }

  transition(
    taskId: string,
    status: AsyncTaskStatus,
    options: { from: readonly AsyncTaskStatus[]; patch?: TaskPatch; detail?: string; via?: AsyncTaskStatus },
  ): TaskRecord | undefined {
    const record = this.tasks.get(taskId);
    if (!record || !options.from.includes(record.status)) return undefined;
    const now = Date.now();
    const events = record.events;
    if (options.via) events.push({ eventId: events.length + 1, status: options.via, timestamp: now, eventDetail: '' });
    events.push({ eventId: events.length + 1, status, timestamp: now, eventDetail: options.detail ?? '' });
    record.status = status;
    if (options.patch) Object.assign(record, options.patch);
    if (TERMINAL_STATUSES.has(status)) {
      this.finished.set(taskId, now);
      this.evict(now);
    }
    return record;
  }

  update(taskId: string, patch: TaskPatch): void {
    const record = this.tasks.get(taskId);
    if (record) Object.assign(record, patch);
  }

  list(query: TaskQuery): TaskPage<TaskRecord> {
    this.evict(Date.now());
    return pageTasks(this.tasks.values(), query);
  }

  unfinished(): TaskRecord[] {
    return [...this.tasks.values()].filter((r) => !TERMINAL_STATUSES.has(r.status) || r.deliveryPending);
  }

  /** How many records are held (finished or not). */
  get size(): number {
    return this.tasks.size;
  }

  private evict(now: number): void {
    const oldestAllowed = now - this.retentionMs;
    for (const [taskId, endedAt] of this.finished) {
      if (this.finished.size <= this.maxTasks && endedAt >= oldestAllowed) break;
      this.finished.delete(taskId);
      this.tasks.delete(taskId);
    }
  }
}

/** Jobs on p-queue with bounded concurrency; delays on timers. */
export class PQueueDriver implements QueueDriver {
  private readonly queue: PQueue;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Jobs queued in this turn of the event loop: handed to p-queue on the next, after the 202 is out. */
  private batch: QueueJob[] = [];
  private process: ((job: QueueJob) => Promise<JobResult>) | undefined;
  private closed = false;

  constructor(concurrency: number) {
    this.queue = new PQueue({ concurrency });
  }

  start(process: (job: QueueJob) => Promise<JobResult>): void {
    this.process = process;
  }

  enqueue(job: QueueJob, delayMs: number): void {
    if (this.closed) return;
    if (delayMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(job.taskId);
        this.run(job);
      }, delayMs);
      this.timers.set(job.taskId, timer);
    } else {
      this.add(job);
    }
  }

  private add(job: QueueJob): void {
    if (!this.process) throw new Error('PQueueDriver.start() was not called');
    if (this.batch.length === 0) setImmediate(this.flush);
    this.batch.push(job);
  }

  private readonly flush = (): void => {
    const jobs = this.batch;
    this.batch = [];
    for (const job of jobs) this.run(job);
  };

  private run(job: QueueJob): void {
    const process = this.process as (job: QueueJob) => Promise<JobResult>;
    void this.queue.add(async () => {
      const result = await process(job);
      if (result) this.enqueue(job, result.retryInMs);
    });
  }

  cancel(taskId: string): boolean {
    const timer = this.timers.get(taskId);
    if (!timer) return false;
    clearTimeout(timer);
    this.timers.delete(taskId);
    return true;
  }

  pending(): number {
    return this.queue.size + this.timers.size + this.batch.length;
  }

  running(): number {
    return this.queue.pending;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.batch = [];
    this.queue.clear();
  }
}

/**
 * The default backend: the in-process p-queue and the in-memory task store. Nothing survives
 * the process: tasks accepted and not finished when it dies are lost (docs/async.md).
 *
 * @example
 * ```ts
 * createHandler(app, { async: { backend: memory({ maxTasks: 1000 }) } });
 * ```
 */
export function memory(options: MemoryBackendOptions = {}): AsyncBackend {
  if (options.maxTasks !== undefined && !(Number.isInteger(options.maxTasks) && options.maxTasks >= 0)) {
    throw new TypeError(`Expected \`maxTasks\` to be an integer from 0 and up, got \`${String(options.maxTasks)}\``);
  }
  if (options.retentionMs !== undefined && !(typeof options.retentionMs === 'number' && options.retentionMs > 0)) {
    throw new TypeError(`Expected \`retentionMs\` to be a number above 0, got \`${String(options.retentionMs)}\``);
  }
  return {
    name: 'memory',
    persistent: false,
    create: ({ concurrency }) => ({ store: new MemoryTaskStore(options), queue: new PQueueDriver(concurrency) }),
  };
}
