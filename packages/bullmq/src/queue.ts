import type { JobResult, Logger, QueueDriver, QueueJob } from '@fc-async/core';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { CLOSE_GRACE_MS, settlesWithin } from './grace.js';
import type { ResolvedBullmqOptions } from './options.js';
import { oncePerOutage } from './outage.js';

/** The BullMQ queue name under the prefix. */
export const QUEUE_NAME = 'tasks';

/**
 * BullMQ attempts per job: 1 + FC's largest `maxAsyncRetryAttempts` (8). The engine applies the
 * configured `maxAsyncRetryAttempts` (which PutAsyncInvokeConfig may change while a task waits)
 * and asks for each retry; BullMQ only carries it out, so it must never run out first.
 */
export const MAX_ATTEMPTS = 9;

/** A job waiting for the end of the current microtasks, to be added with the others of its turn. */
interface PendingJob {
  taskId: string;
  delayMs: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Thrown from the processor when the engine wants another attempt: BullMQ's retry, with its delay as backoff. */
class RetryLater extends Error {
  constructor(readonly delayMs: number) {
    super(`retry in ${delayMs} ms`);
    this.name = 'RetryLater';
  }
}

/**
 * Tasks as BullMQ jobs, the task id as job id (a duplicate is refused). A retry is a BullMQ
 * retry of the same job, delayed by the engine's backoff; `x-fc-async-delay` is the job delay;
 * a worker that dies loses its jobs to the others once their lock expires (stalled jobs).
 */
export class BullmqQueueDriver implements QueueDriver {
  readonly shared = true;
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private active = 0;
  private waiting = 0;
  private addedSinceCount = 0;
  private jobs: PendingJob[] = [];
  private readonly timer: NodeJS.Timeout;

  /**
   * @param client - The task store's connection, for the queue and the worker's commands too: a
   *   job added right after its record is written after it (Redis runs one connection's commands
   *   in order), so no worker sees a job without its record; and what an attempt writes leaves
   *   with what the worker sends in the same turn (see `corkEachTurn`). BullMQ duplicates it for
   *   the worker's blocking reads.
   */
  constructor(
    private readonly client: Redis,
    private readonly options: ResolvedBullmqOptions,
    private readonly concurrency: number,
    private readonly logger: Logger,
    /** Drops the worker's own connections when its close is given up on (see `close`). */
    private readonly abandon: () => void = () => {},
  ) {
    this.queue = new Queue(QUEUE_NAME, { connection: client, prefix: options.prefix });
    this.queue.on(
      'error',
      oncePerOutage(client, (error) => logger.error('bullmq queue error', { error })),
    );
    this.timer = setInterval(() => void this.count(), 1000);
    this.timer.unref();
  }

  async start(process: (job: QueueJob) => Promise<JobResult>): Promise<void> {
    await this.count();
    if (!this.options.worker) return;
    const worker = new Worker(
      QUEUE_NAME,
      async (job) => {
        this.active++;
        try {
          const result = await process({ taskId: job.id as string });
          if (result) throw new RetryLater(result.retryInMs);
        } finally {
          this.active--;
        }
      },
      {
        connection: this.client,
        prefix: this.options.prefix,
        concurrency: this.concurrency,
        lockDuration: this.options.lockDurationMs,
        stalledInterval: this.options.stalledIntervalMs,
        maxStalledCount: MAX_ATTEMPTS,
        settings: { backoffStrategy: (_made, _type, error) => (error instanceof RetryLater ? error.delayMs : 0) },
      },
    );
    worker.on(
      'error',
      oncePerOutage(this.client, (error) => this.logger.error('bullmq worker error', { error })),
    );
    worker.on('failed', (job, error) => {
      if (!(error instanceof RetryLater)) this.logger.error('bullmq job failed', { taskId: job?.id, error });
    });
    this.worker = worker;
    await worker.waitUntilReady();
  }

  /**
   * Adds a job. The jobs of one turn (a burst of requests) are added together with `addBulk`
   * (one write to Redis) at the end of the turn's current microtasks, after the task store has
   * sent their records on the same connection.
   */
  enqueue(job: QueueJob, delayMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.jobs.length === 0) queueMicrotask(this.flushJobs);
      this.jobs.push({ taskId: job.taskId, delayMs, resolve, reject });
    });
  }

  private readonly flushJobs = (): void => {
    const batch = this.jobs;
    this.jobs = [];
    const adding =
      batch.length === 1
        ? this.queue.add('task', {}, jobOptions(batch[0] as PendingJob))
        : this.queue.addBulk(batch.map((job) => ({ name: 'task', data: {}, opts: jobOptions(job) })));
    adding.then(
      () => {
        this.addedSinceCount += batch.length;
        for (const job of batch) job.resolve();
      },
      (error: unknown) => {
        if (batch.length === 1) {
          (batch[0] as PendingJob).reject(error);
          return;
        }
        // addBulk fails as a whole: add each job alone so that each gets its own outcome (adding
        // a job id that is already there again is a no-op).
        for (const job of batch) {
          this.queue.add('task', {}, jobOptions(job)).then(() => {
            this.addedSinceCount++;
            job.resolve();
          }, job.reject);
        }
      },
    );
  };

  async cancel(taskId: string): Promise<boolean> {
    const job = await this.queue.getJob(taskId);
    if (!job) return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false; // running somewhere: the task's status decides
    }
  }

  /** Waiting and delayed jobs of every instance, as of the last count (each second) plus this instance's adds since. */
  pending(): number {
    return this.waiting + this.addedSinceCount;
  }

  running(): number {
    return this.active;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    // With Redis unreachable, BullMQ waits for its blocking connection forever: past the grace
    // period, leave the worker (the engine has already waited for this instance's attempts); the
    // jobs it held go back to the queue once their lock expires.
    if (this.worker && !(await settlesWithin(this.worker.close(), CLOSE_GRACE_MS))) {
      this.logger.warn('bullmq worker did not close in time (Redis unreachable); leaving it', {
        graceMs: CLOSE_GRACE_MS,
      });
      this.abandon();
    }
    await this.queue.close();
  }

  private async count(): Promise<void> {
    try {
      const counts = await this.queue.getJobCounts('wait', 'delayed', 'prioritized', 'paused');
      this.waiting = Object.values(counts).reduce((sum, n) => sum + n, 0);
      this.addedSinceCount = 0;
    } catch (error) {
      this.logger.warn('counting waiting async tasks failed', { error });
    }
  }
}

/** A task's job: its id is the task id (a duplicate is refused); retries are the engine's (see MAX_ATTEMPTS). */
function jobOptions(job: PendingJob) {
  return {
    jobId: job.taskId,
    delay: job.delayMs > 0 ? job.delayMs : undefined,
    attempts: MAX_ATTEMPTS,
    backoff: { type: 'fc-async' },
    removeOnComplete: true,
    removeOnFail: true,
    stackTraceLimit: 0,
  };
}
