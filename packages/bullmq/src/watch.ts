import type { Logger } from '@fc-async/core';
import { ReplyError } from 'ioredis';
import { blockingCopyOf, type RedisClient } from './connection.js';
import type { Keys } from './keys.js';
import { taskOfJob } from './queue.js';

/** Entries of BullMQ's event stream read at once. */
const READ_COUNT = 1000;
/** How long one read waits for new entries before it asks again (and looks whether to stop). */
const BLOCK_MS = 5000;
/** Wait before reading again after a read failed other than by a lost connection (which ioredis waits out). */
const FAILED_READ_WAIT_MS = 1000;
/** Tasks whose record may lag their job's event (see `EventTail.lagging`), at most. */
const MAX_LAGGING = 1000;
/** First and longest wait before a lagging task's record is read (again). */
const FIRST_LOOK_MS = 20;
const LONGEST_LOOK_MS = 1000;
/** How long a lagging task is looked at before it is reported as it is (its instance died, say). */
const GIVE_UP_MS = 30_000;

/**
 * BullMQ's events whose job move comes before the task's record shows it: `active` (a worker took
 * the job; the attempt then writes `Running`) and `removed` (a stop took a waiting job out; the stop
 * then writes `Stopped`, and the destination call its status). Every other event of a job is written
 * after its record (an accept, a retry's backoff, an end).
 */
const AHEAD_OF_RECORD = new Set(['active', 'removed']);

/** Statuses of a task not taken yet: an `active` job's record has moved on once it has none of them. */
const UNCLAIMED = new Set(['Enqueued', 'Retrying']);

interface Lagging {
  /** The event: 'active' (done once claimed) or 'removed' (done once ended, its destination called). */
  event: string;
  since: number;
  nextLookAt: number;
  waitMs: number;
}

/**
 * Follows BullMQ's own event stream (`<prefix>:tasks:events`, which BullMQ writes on every job move
 * whether or not anyone reads it) on a connection of its own, and reports the tasks whose job moved,
 * so that the dashboard of any instance sees what the others do. It adds no command to the task
 * path: it only reads, and only while it runs (while a dashboard is open). A job moved before its
 * task's record was written (see AHEAD_OF_RECORD) is reported again once the record shows the move,
 * read on the store's connection with short, growing waits.
 */
export class EventTail {
  private readonly reader: RedisClient;
  private stopped = false;
  private readonly lagging = new Map<string, Lagging>();
  private timer: NodeJS.Timeout | undefined;
  private looking = false;
  /** The wait after a failed read, cut short by stop(). */
  private pause: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  /** The refusals told since the last read that succeeded: each is told once. */
  private readonly told = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly report: (taskIds: readonly string[]) => void,
    private readonly logger?: Logger,
  ) {
    // A blocking read waits as long as it asks: no command timeout, no retry limit while Redis is away.
    // Its own connection, not one of the store's copies (which a worker's close given up on drops).
    this.reader = blockingCopyOf(redis);
    // A lost connection is the store's connections' to report (the same outage). A refusal is this
    // connection's own (Redis at `maxclients`, an ACL without XREAD): the page would stay unwatched
    // without a word, so it is told, once until a read succeeds.
    this.reader.on('error', (error: Error) => this.refused(error));
    // Connected again after an outage: what the watcher shows may be stale in ways no entry tells
    // (a Redis restarted without its data, a stream trimmed past the last entry read, stops
    // published meanwhile): it reads everything again. Its first connection is the run's to tell.
    let connected = false;
    this.reader.on('ready', () => {
      if (connected && !this.stopped) this.report([]);
      connected = true;
    });
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.pause) {
      clearTimeout(this.pause.timer);
      this.pause.resolve();
    }
    this.lagging.clear();
    this.reader.disconnect();
  }

  private async run(): Promise<void> {
    const stream = this.keys.events;
    let last: string | undefined;
    while (!this.stopped) {
      try {
        if (last === undefined) {
          // From the stream's last entry as it is now; then a read again of the whole page, so that
          // nothing written before this point and after the page's last load is missed.
          const top = await this.reader.xrevrange(stream, '+', '-', 'COUNT', 1);
          last = top[0]?.[0] ?? '0-0';
          if (this.stopped) return;
          this.report([]);
        }
        const reply = await this.reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', stream, last);
        if (this.stopped) return;
        this.told.clear();
        const entries = reply?.[0]?.[1] ?? [];
        const changed = new Set<string>();
        for (const [id, fields] of entries) {
          last = id;
          const taskId = jobOf(fields);
          if (taskId === undefined) continue;
          changed.add(taskId);
          this.follow(taskId, eventOf(fields));
        }
        if (changed.size > 0) this.report([...changed]);
      } catch (error) {
        if (this.stopped) return;
        this.refused(error);
        await new Promise<void>((resolve) => {
          this.pause = { timer: setTimeout(resolve, FAILED_READ_WAIT_MS), resolve };
        });
        this.pause = undefined;
      }
    }
  }

  /** Tells a refusal by Redis (not a lost connection) once, until a read succeeds. */
  private refused(error: unknown): void {
    // ioredis types ReplyError as `any`: narrowed by hand.
    if (!(error instanceof ReplyError) || this.stopped) return;
    const { message } = error as Error;
    if (this.told.has(message)) return;
    this.told.add(message);
    this.logger?.warn(
      'the dashboard cannot follow the changes other instances make: Redis refused reading its events',
      {
        reason: message,
      },
    );
  }

  /** Keeps a task whose record lags its job's event in view; any later event of its job is reported itself. */
  private follow(taskId: string, event: string | undefined): void {
    if (event === undefined || !AHEAD_OF_RECORD.has(event)) {
      this.lagging.delete(taskId);
      return;
    }
    if (!this.lagging.has(taskId) && this.lagging.size >= MAX_LAGGING) return;
    const now = Date.now();
    this.lagging.set(taskId, { event, since: now, nextLookAt: now + FIRST_LOOK_MS, waitMs: FIRST_LOOK_MS });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.looking || this.stopped || this.lagging.size === 0) return;
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.lagging.values()) next = Math.min(next, entry.nextLookAt);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.look();
      },
      Math.max(0, next - Date.now()),
    );
  }

  /** Reads the records of the lagging tasks due a look; reports those that moved. */
  private async look(): Promise<void> {
    this.looking = true;
    try {
      const now = Date.now();
      const due = [...this.lagging].filter(([, entry]) => entry.nextLookAt <= now);
      if (due.length === 0) return;
      const pipeline = this.redis.pipeline();
      for (const [taskId] of due) {
        pipeline.hget(this.keys.task(taskId), 's');
        pipeline.sismember(this.keys.open, taskId);
      }
      const replies = (await pipeline.exec()) ?? [];
      if (this.stopped) return;
      const moved: string[] = [];
      for (const [i, [taskId, entry]] of due.entries()) {
        // Another event of the job came meanwhile, and replaced or ended this look.
        if (this.lagging.get(taskId) !== entry) continue;
        const [statusError, status] = replies[2 * i] ?? [];
        const [openError, open] = replies[2 * i + 1] ?? [];
        const done =
          statusError || openError
            ? false
            : status === null || (entry.event === 'active' ? !UNCLAIMED.has(status as string) : open === 0);
        if (done || now - entry.since >= GIVE_UP_MS) {
          this.lagging.delete(taskId);
          moved.push(taskId);
        } else {
          entry.waitMs = Math.min(entry.waitMs * 2, LONGEST_LOOK_MS);
          entry.nextLookAt = now + entry.waitMs;
        }
      }
      if (moved.length > 0) this.report(moved);
    } catch {
      // Redis away: the next look tries again.
      const now = Date.now();
      for (const entry of this.lagging.values()) entry.nextLookAt = Math.max(entry.nextLookAt, now + LONGEST_LOOK_MS);
    } finally {
      this.looking = false;
      this.schedule();
    }
  }
}

/** A stream entry's field, from its flat `[name, value, ...]` list. */
function field(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

const eventOf = (fields: readonly string[]) => field(fields, 'event');

/** The task of an entry's job, when it names one (`drained` names none). */
function jobOf(fields: readonly string[]): string | undefined {
  const jobId = field(fields, 'jobId');
  return jobId === undefined ? undefined : taskOfJob(jobId);
}
