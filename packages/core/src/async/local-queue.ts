import PQueue from 'p-queue';
import type { JobResult, QueueDriver, QueueJob } from './backend.js';
import { DelayHeap } from './delay-heap.js';

/** Dequeued slots kept at the head of the backlog before it is compacted. */
const COMPACT_AT = 1024;

/**
 * The in-process queue: p-queue runs jobs, at most `concurrency` at once; delays wait in a heap under one timer.
 * Jobs beyond the running ones wait in a backlog of task ids and are handed to p-queue as it
 * frees a slot, so a waiting task costs one array slot, not p-queue's per-job promise and
 * closures. Jobs queued in one turn of the event loop start on the next, after their 202 is out.
 *
 * @example
 * ```ts
 * declare function runTask(taskId: string): Promise<void>;
 * const queue = new PQueueDriver(4);
 * queue.start(async ({ taskId }) => { await runTask(taskId); return undefined; });
 * queue.enqueue({ taskId: 't1' }, 0);
 * ```
 */
export class PQueueDriver implements QueueDriver {
  private readonly queue: PQueue;
  private readonly concurrency: number;
  private readonly delayed = new DelayHeap((taskId) => {
    this.backlog.push(taskId);
    this.pump();
  });
  /** Task ids waiting for a slot, from `head` on (the job object is made when it runs); '' is a cancelled one. */
  private backlog: string[] = [];
  private head = 0;
  /** Cancelled slots from `head` on: a stopped task no longer counts as waiting (maxQueuedTasks). */
  private cancelled = 0;
  private scheduled = false;
  private process: ((job: QueueJob) => Promise<JobResult>) | undefined;
  private closed = false;

  constructor(concurrency: number) {
    if (!(typeof concurrency === 'number' && concurrency >= 1)) {
      throw new TypeError(`Expected \`concurrency\` to be a number from 1 and up, got \`${String(concurrency)}\``);
    }
    this.concurrency = concurrency;
    this.queue = new PQueue({ concurrency });
    this.queue.on('next', this.pump);
  }

  start(process: (job: QueueJob) => Promise<JobResult>): void {
    this.process = process;
  }

  enqueue(job: QueueJob, delayMs: number): void {
    if (this.closed) return;
    if (!this.process) throw new Error('PQueueDriver.start() was not called');
    const taskId = job.taskId;
    if (delayMs > 0) {
      this.delayed.add(taskId, delayMs);
      return;
    }
    this.backlog.push(taskId);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Takes a waiting job out (delayed, or queued for a slot); false when it was not waiting. */
  cancel(taskId: string): boolean {
    if (this.delayed.cancel(taskId)) return true;
    const i = this.backlog.indexOf(taskId, this.head);
    if (i < 0) return false;
    this.backlog[i] = '';
    this.cancelled++;
    return true;
  }

  pending(): number {
    return this.backlog.length - this.head - this.cancelled + this.queue.size + this.delayed.size;
  }

  running(): number {
    return this.queue.pending;
  }

  /** `Date.now()` while a job waits for a slot, else when the earliest delayed job is due. */
  nextDueAt(): number | undefined {
    if (this.backlog.length - this.head - this.cancelled > 0 || this.queue.size > 0) return Date.now();
    return this.delayed.nextAt;
  }

  close(): void {
    this.closed = true;
    this.delayed.clear();
    this.backlog = [];
    this.head = 0;
    this.cancelled = 0;
    this.queue.clear();
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    this.pump();
  };

  /** Hands waiting jobs to p-queue while it has a free slot. */
  private readonly pump = (): void => {
    const queue = this.queue;
    while (!this.closed && this.head < this.backlog.length && queue.pending + queue.size < this.concurrency) {
      const taskId = this.backlog[this.head] as string;
      this.backlog[this.head++] = '';
      if (this.head === this.backlog.length) {
        this.backlog.length = 0;
        this.head = 0;
      } else if (this.head >= COMPACT_AT && this.head * 2 >= this.backlog.length) {
        this.backlog = this.backlog.slice(this.head);
        this.head = 0;
      }
      if (taskId === '') {
        this.cancelled--;
        continue;
      }
      void queue.add(() => this.run({ taskId }));
    }
  };

  private async run(job: QueueJob): Promise<void> {
    const result = await (this.process as (job: QueueJob) => Promise<JobResult>)(job);
    // A retry waits at least for the next turn of the event loop, as a new job does.
    if (result) this.enqueue(job, result.retryInMs);
  }
}
