import {
  type JobResult,
  type Logger,
  type QueueDriver,
  type QueueJob,
  type TaskRecord,
  TERMINAL_STATUSES,
} from '@fc-async/core';
import { DelayedError, Job, Queue, QueueKeys, WaitingError, Worker } from 'bullmq';
import type { RedisClient } from './connection.js';
import { CLOSE_GRACE_MS, settlesWithin, timedOut } from './grace.js';
import type { ResolvedBullmqOptions } from './options.js';
import { oncePerOutage } from './outage.js';

/** The BullMQ queue name under the prefix. */
export const QUEUE_NAME = 'tasks';

/**
 * BullMQ attempts per job: past any count the engine can reach, so that BullMQ never gives a job up
 * first (its task would wait forever, with no job left to run it). The engine applies
 * `maxAsyncRetryAttempts` (which PutAsyncInvokeConfig may change while a task waits) and asks for
 * each retry, and for more: an attempt cut by its instance closing is left to another instance
 * whatever the count, and a write Redis refused is tried again.
 */
export const MAX_ATTEMPTS = Number.MAX_SAFE_INTEGER;

/**
 * Times a job may be found stalled (its lock expired) before BullMQ fails it: never, as a job
 * BullMQ fails leaves its task with no job to run it. An instance that dies in an attempt
 * is bounded by the engine instead: the next instance counts the cut attempt against
 * `maxAsyncRetryAttempts`. A live instance whose event loop blocks past the lock loses it once
 * per block, as often as a long attempt blocks.
 */
const MAX_STALLS = Number.MAX_SAFE_INTEGER;

/** A job waiting for the end of the current microtasks, to be added with the others of its turn. */
interface PendingJob {
  taskId: string;
  delayMs: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A task's attempt running on this instance, and its job if it was taken back and parked meanwhile. */
interface Run {
  parked: Job | undefined;
}

/** Thrown from the processor when the engine wants another attempt: BullMQ's retry, with its delay as backoff. */
class RetryLater extends Error {
  constructor(readonly delayMs: number) {
    super(`retry in ${delayMs} ms`);
    this.name = 'RetryLater';
  }
}

/**
 * Tasks as BullMQ jobs, one per task (its id the task id, see jobIdOf: a duplicate is refused). A retry is a BullMQ
 * retry of the same job, delayed by the engine's backoff; `x-fc-async-delay` is the job delay;
 * a worker that dies loses its jobs to the others once their lock expires (stalled jobs).
 * A lock lost by a live worker (its event loop blocked) loses no task: a job stays in BullMQ for
 * every task its record leaves unfinished, and the task's record decides what the next run does.
 */
export class BullmqQueueDriver implements QueueDriver {
  readonly shared = true;
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private active = 0;
  private waiting = 0;
  private addedSinceCount = 0;
  /** The last count failed: its warning was logged, the next failures of the outage are not. */
  private countFailing = false;
  private jobs: PendingJob[] = [];
  /** Tasks whose lost lock was told (see `lockLost`). */
  private readonly lockLostTold = new Set<string>();
  private readonly runs = new Map<string, Run>();
  private readonly timer: NodeJS.Timeout;
  /** Takes whose answer Redis did not give in time (see `takeLost`), by their lock token. */
  private readonly lostTakes = new Set<string>();
  private handingBack: Promise<void> | undefined;
  private closing = false;
  /** The worker's close, from `stopTaking` on; `null` when it stopped taking before it had a worker. */
  private workerClosed: Promise<void> | null | undefined;
  /** When `stopTaking` began the worker's close: `close` leaves the worker {@link CLOSE_GRACE_MS} after it. */
  private stopTakingAt = 0;

  /**
   * @param client - The task store's connection, for the queue and the worker's commands too: a
   *   job added right after its record is written after it (Redis runs one connection's commands
   *   in order), so no worker sees a job without its record; and what an attempt writes leaves
   *   with what the worker sends in the same turn (see `corkEachTurn`). BullMQ duplicates it for
   *   the worker's blocking reads.
   */
  constructor(
    private readonly client: RedisClient,
    private readonly options: ResolvedBullmqOptions,
    private readonly concurrency: number,
    private readonly logger: Logger,
    /** The task as the store last saw it on this instance, if it still has it (no round trip). */
    private readonly lastSeen: (taskId: string) => TaskRecord | undefined,
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

  /**
   * A task whose attempt close() gave up on (its app ignored the abort) waits out a lock's length
   * before another instance may run it: the attempt may still run in this process, and a job lock
   * is what tells a live instance from a dead one.
   */
  get abandonedRetryDelayMs(): number {
    return this.options.lockDurationMs;
  }

  async start(process: (job: QueueJob) => Promise<JobResult>): Promise<void> {
    await this.count();
    if (!this.options.worker || this.workerClosed !== undefined) return;
    const worker = new TakingWorker(
      QUEUE_NAME,
      async (job, token) => {
        if (this.workerClosed !== undefined && token) {
          // Taken as the worker began closing (a blocking fetch under way): back to the front of
          // the queue for another instance, no attempt counted.
          await job.moveToWait(token);
          throw new WaitingError();
        }
        const taskId = taskOfJob(job.id as string);
        const running = this.runs.get(taskId);
        if (running) {
          // Taken back while its attempt still runs here (the lock was lost: the event loop stayed
          // blocked past lockDurationMs). Parked, so that it holds no slot and counts no stall.
          running.parked = job;
          await job.moveToDelayed(Date.now() + this.options.lockDurationMs, token);
          throw new DelayedError();
        }
        const run: Run = { parked: undefined };
        this.runs.set(taskId, run);
        this.active++;
        let result: JobResult;
        try {
          result = await process({ taskId });
        } finally {
          this.active--;
          this.runs.delete(taskId);
        }
        if (run.parked) {
          // This processing's lock is gone: the parked job carries the outcome, when the retry is due or at once.
          await (result && result.retryInMs > 0
            ? run.parked.changeDelay(result.retryInMs)
            : run.parked.promote()
          ).catch((error: unknown) => this.logger.debug('bullmq parked job already moved', { taskId, error }));
          throw new WaitingError();
        }
        if (result) throw new RetryLater(result.retryInMs);
        // Done with a task that is not: another instance's attempt, its lock lost, recorded its end
        // over this one's; or its delivery was cut short by close(). The job stays until the task's
        // due time, so that a job exists for every unfinished task and every delivery still owed.
        const task = this.lastSeen(taskId);
        if (task && (!TERMINAL_STATUSES.has(task.status) || task.deliveryPending)) {
          throw new RetryLater(task.dueAt ? Math.max(0, task.dueAt - Date.now()) : this.options.lockDurationMs);
        }
      },
      {
        connection: this.client,
        prefix: this.options.prefix,
        concurrency: this.concurrency,
        lockDuration: this.options.lockDurationMs,
        stalledInterval: this.options.stalledIntervalMs,
        maxStalledCount: MAX_STALLS,
        settings: { backoffStrategy: (_made, _type, error) => (error instanceof RetryLater ? error.delayMs : 0) },
      },
    );
    const outage = oncePerOutage(this.client, (error) => this.logger.error('bullmq worker error', { error }));
    worker.on('error', (error) => {
      const jobId = LOCK_LOST.exec(error.message)?.[1];
      if (jobId === undefined) outage(error);
      else this.lockLost(taskOfJob(jobId), error.message);
    });
    worker.on('failed', (job, error) => {
      if (!(error instanceof RetryLater)) {
        this.logger.error('bullmq job failed', { taskId: job?.id && taskOfJob(job.id), error });
      }
    });
    worker.takeLost = (token) => this.takeLost(token);
    this.worker = worker;
    await worker.waitUntilReady();
  }

  /**
   * One line per task whose lock this instance lost (frozen or overloaded past `lockDurationMs`,
   * a long GC pause, a container paused): BullMQ reports it up to three times with its own stacks
   * (the lock's renewal, then the end's and the retry's commands refused), where what happened is
   * one thing, said once, at `warn`: it is handled.
   */
  private lockLost(taskId: string, reason: string): void {
    if (this.lockLostTold.has(taskId)) return;
    if (this.lockLostTold.size >= 1024) this.lockLostTold.clear();
    this.lockLostTold.add(taskId);
    if (ALREADY_ENDED.test(reason)) {
      // The job is gone as its end is written: that end was sent again after a connection reset
      // (ioredis resends what a dropped connection did not answer), or another instance ended it.
      // Either way the task's record decided how it ended: nothing was lost, nothing to chase.
      this.logger.info('bullmq: a job had already ended when this instance wrote its end again', { taskId, reason });
      return;
    }
    this.logger.warn(
      "bullmq: this instance lost a task's lock (held up past lockDurationMs); another instance takes the task over, and this attempt's end is not recorded",
      { taskId, reason },
    );
  }

  /**
   * A take (BullMQ's move of a job to active, alone or with the end of the previous job) that
   * Redis did not answer within `commandTimeoutMs` (frozen or stalled, its connection open): Redis
   * still runs it when it wakes, and the job it moved is then active, locked with `token`, which
   * the worker has given up on and never uses again. Nothing would run that job until its lock
   * expired and stalled-job recovery found it (up to `lockDurationMs` plus two
   * `stalledIntervalMs`). Once Redis answers again, such a job goes back to the front of the
   * queue, its lock checked, for this instance or another to run at once; its task's attempt
   * never started, so none is counted.
   */
  private takeLost(token: string): void {
    this.lostTakes.add(token);
    this.handingBack ??= this.handBack().finally(() => {
      this.handingBack = undefined;
    });
  }

  private async handBack(): Promise<void> {
    for (let failures = 0; this.lostTakes.size > 0 && !this.closing; ) {
      // Every take in `tokens` was sent on this connection before the reads below: Redis has run
      // it (one connection's commands run in order; ioredis keeps a command it gave up on in its
      // queue) once they are answered.
      const tokens = new Set(this.lostTakes);
      try {
        const active = await this.client.lrange(this.queue.keys.active as string, 0, -1);
        const locks =
          active.length > 0 ? await this.client.mget(active.map((id) => `${this.queue.toKey(id)}:lock`)) : [];
        failures = 0;
        for (const token of tokens) this.lostTakes.delete(token);
        for (const [i, lock] of locks.entries()) {
          if (lock === null || !tokens.has(lock)) continue;
          const jobId = active[i] as string;
          // Checked against the lock in Redis: a job another worker took meanwhile stays where it is.
          await Job.fromId(this.queue, jobId)
            .then((job) => job?.moveToWait(lock))
            .then(
              () =>
                this.logger.info('bullmq: a job taken while Redis stalled went back to the queue', {
                  taskId: taskOfJob(jobId),
                }),
              (error: unknown) =>
                this.logger.debug('bullmq: a job taken while Redis stalled had moved', {
                  taskId: taskOfJob(jobId),
                  error,
                }),
            );
        }
      } catch (error) {
        // Still stalled or away: look again; past a few tries, stalled-job recovery finds the job.
        if (++failures >= HAND_BACK_TRIES) {
          this.logger.warn('bullmq: could not look for jobs taken while Redis stalled; stalled-job recovery will', {
            error,
          });
          this.lostTakes.clear();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /**
   * Adds a job. The jobs of one turn (a burst of requests) are added at the end of the turn's
   * current microtasks, after the task store has sent their records on the same connection, each
   * with its own `queue.add`: their commands still leave in one write (see `corkEachTurn`), each
   * job gets its own outcome, and it costs less than one `addBulk` (whose pipeline copies every
   * BullMQ script onto itself): bursts of 32 accepts about 5 % faster, paired.
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
    for (const job of batch) {
      this.queue.add('task', {}, jobOptions(job)).then(() => {
        this.addedSinceCount++;
        job.resolve();
      }, job.reject);
    }
  };

  async cancel(taskId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobIdOf(taskId));
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

  /**
   * Closing: BullMQ's worker close stops it taking jobs at once (the other instances take what
   * waits) and resolves once the jobs it holds are done, their locks kept until then.
   */
  stopTaking(): void {
    if (this.workerClosed !== undefined) return;
    this.stopTakingAt = performance.now();
    this.workerClosed = this.worker?.close() ?? null;
    this.workerClosed?.catch((error: unknown) => this.logger.error('bullmq worker close failed', { error }));
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    this.stopTaking();
    // With Redis unreachable, BullMQ waits for its blocking connection forever: past the grace
    // period, leave the worker (the engine has already waited for this instance's attempts); the
    // jobs it held go back to the queue once their lock expires. The grace runs from stopTaking
    // (the start of the engine's close), not from here: after the engine's own waits (up to its
    // stop grace for an attempt whose claim or end Redis did not answer) it would come on top of
    // them, past the bound close() promises.
    const graceLeftMs = Math.max(CLOSE_GRACE_MS - (performance.now() - this.stopTakingAt), 0);
    if (this.workerClosed && !(await settlesWithin(this.workerClosed, graceLeftMs))) {
      // Either Redis is unreachable or a job it holds is still running (an attempt that ignored its stop).
      this.logger.warn(
        'bullmq worker did not close in time (Redis unreachable, or an attempt still running); leaving it',
        {
          graceMs: CLOSE_GRACE_MS,
          running: this.active,
        },
      );
      this.abandon();
    }
    await this.queue.close();
  }

  private async count(): Promise<void> {
    try {
      // No 'paused': this backend never pauses its queue, and BullMQ 6 no longer has that state
      // (a paused queue's jobs stay in 'wait').
      const counts = await this.queue.getJobCounts('wait', 'delayed', 'prioritized');
      this.waiting = Object.values(counts).reduce((sum, n) => sum + n, 0);
      this.addedSinceCount = 0;
      this.countFailing = false;
    } catch (error) {
      // Once per outage, not on every tick of the timer while Redis stays away.
      if (!this.countFailing) this.logger.warn('counting waiting async tasks failed', { error });
      this.countFailing = true;
    }
  }
}

/** Reads for a lost take's job before leaving it to stalled-job recovery. */
const HAND_BACK_TRIES = 20;

/**
 * BullMQ's worker, telling which takes Redis did not answer in time (see `takeLost`). A take's
 * token is the lock of the job it moves to active, and of the next one the job's end takes with
 * it: the worker drops a token once such a command fails, except after an end it could not write,
 * which it writes again as a failure (`handleFailed`), whose answer may carry on with the token.
 */
class TakingWorker extends Worker {
  takeLost: ((token: string) => void) | undefined;
  /** Tokens whose end (with its take) was not answered; lost unless the failure written next takes a job. */
  private readonly unanswered = new Set<string>();

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    try {
      return await super.moveToActive(token, name);
    } catch (error) {
      if (timedOut(error)) this.takeLost?.(token);
      throw error;
    }
  }

  protected override async handleCompleted(
    ...args: Parameters<Worker['handleCompleted']>
  ): ReturnType<Worker['handleCompleted']> {
    try {
      return await super.handleCompleted(...args);
    } catch (error) {
      if (timedOut(error)) this.unanswered.add(args[2]);
      throw error;
    }
  }

  protected override async handleFailed(
    ...args: Parameters<Worker['handleFailed']>
  ): ReturnType<Worker['handleFailed']> {
    const token = args[2];
    let next: Job | undefined;
    let lost = this.unanswered.delete(token);
    try {
      next = await super.handleFailed(...args);
    } catch (error) {
      lost ||= timedOut(error);
      throw error;
    } finally {
      if (lost && !next) this.takeLost?.(token);
    }
    return next;
  }
}

/**
 * A job's id: the task id, unless it is the name of one of the queue's own keys (`meta`, `wait`,
 * `active`, `events`...: a job's key is `<prefix>:tasks:<id>`, as theirs are), which lost that task
 * or broke the queue for every task: such an id goes behind `t.` (no task id has a `.`: FC's rule
 * is letters, digits, `_` and `-`). Every other task keeps its id as its job's, as earlier versions
 * named it, so that instances of both run each other's jobs during a rolling upgrade.
 */
export function jobIdOf(taskId: string): string {
  return QUEUE_KEY_NAMES.has(taskId) ? `${JOB_PREFIX}${taskId}` : taskId;
}

/** BullMQ's words for a job whose lock this worker no longer holds; the job id is the first group. */
const LOCK_LOST = /^(?:could not renew lock for job|Missing key for job|Lock mismatch for job) ([^\s.]+(?:\.[^\s.]+)?)/;
/** BullMQ's refusal of a job's end when the job is gone already (not a lock another instance holds). */
const ALREADY_ENDED = /^Missing key for job \S+ moveToFinished/;

/** The task of a job. */
export function taskOfJob(jobId: string): string {
  return jobId.startsWith(JOB_PREFIX) ? jobId.slice(JOB_PREFIX.length) : jobId;
}

const JOB_PREFIX = 't.';

/** The names of the queue's own keys, as this BullMQ version makes them (and its metrics'). */
const QUEUE_KEY_NAMES = new Set([...Object.keys(new QueueKeys('p').getKeys(QUEUE_NAME)), 'metrics']);

/** A task's job: one per task (a duplicate id is refused); retries are the engine's (see MAX_ATTEMPTS). */
function jobOptions(job: PendingJob) {
  return {
    jobId: jobIdOf(job.taskId),
    delay: job.delayMs > 0 ? job.delayMs : undefined,
    attempts: MAX_ATTEMPTS,
    backoff: { type: 'fc-async' },
    removeOnComplete: true,
    removeOnFail: true,
    stackTraceLimit: 0,
  };
}
