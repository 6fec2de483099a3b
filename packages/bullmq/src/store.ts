import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  type AsyncTaskStatus,
  encodeCompactRecord,
  encodeRequestHead,
  FcAsyncError,
  type Logger,
  patchedRecord,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  type TransitionOptions,
  transitionedRecord,
} from '@fc-async/core';
import { decodeRecord, indexArgs } from './codec.js';
import type { RedisClient } from './connection.js';
import { answerOf, notAccepted, settlesWithin, storeClosed, timedOut } from './grace.js';
import { CAS_SCRIPT, INSERT_MANY_SCRIPT, INSERT_SCRIPT, type Keys, LIST_SCRIPT, PUBLISH_SCRIPT } from './keys.js';
import { type ListCommand, listTasks } from './list.js';
import { EventTail } from './watch.js';

type CasReply = [1] | [-1] | [0, Buffer, Buffer, Buffer, Buffer | null, Buffer | null];

interface Versioned {
  v: string;
  /** The token of the write that made version `v`. */
  w: string;
  record: TaskRecord;
  /** Read from this instance's cache: it may be stale. */
  cached: boolean;
}

interface Scripts extends ListCommand {
  fcAsyncInsert(...args: (string | Buffer)[]): Promise<number>;
  fcAsyncInsertMany(keyCount: number, ...args: (string | Buffer)[]): Promise<number[]>;
  /** The compare-and-set, its bulk replies as Buffers (the body is bytes). */
  fcAsyncCasBuffer(...args: string[]): Promise<CasReply>;
  /** PUBLISH on the node owning the channel's slot (see PUBLISH_SCRIPT). */
  fcAsyncPublish(channel: string, message: string): Promise<number>;
}

/** An insert waiting for the end of the current microtasks, to go out with the others of its turn. */
interface PendingInsert {
  record: TaskRecord;
  resolve: (added: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * A body as the insert sends it: as text when it is UTF-8 (Redis stores the very same bytes), so
 * that ioredis builds the command as one string; a Buffer among its arguments makes it assemble
 * every argument into a Buffer piece by piece, which took an insert's command from about 3 to 8 µs.
 */
function bodyArg(body: Buffer): string | Buffer {
  return isUtf8(body) ? body.toString() : body;
}

/** How long close() waits for Redis to answer the connections' QUIT before it drops them (Redis frozen). */
const QUIT_GRACE_MS = 1000;

/** How long a claim Redis did not answer in time is confirmed for by default: BullMQ's default job lock. */
const CONFIRM_WITHIN_MS = 30_000;

/** `answerOf`'s 503 for a command Redis did not answer within `commandTimeoutMs`. */
function unansweredInTime(error: unknown): boolean {
  return error instanceof FcAsyncError && timedOut(error.cause);
}

/** Records kept to skip a read before a compare-and-set; a stale one costs one extra round trip. */
const CACHE_SIZE = 10_000;

/**
 * A record read from Redis to be kept in the cache, its body copied out: ioredis hands a reply's
 * bulk strings as views of the connection's read buffer, which holds every reply of one read (up
 * to 64 KB in a burst), and a cached body would keep all of it alive, for as long as its task is
 * cached (measured: a 100-byte body read among 1,000 others kept 10 to 64 KB).
 */
function decodeKept(r: Buffer, p: Buffer | null | undefined, b: Buffer | null | undefined): TaskRecord {
  return decodeRecord(r.toString(), p?.toString(), b && Buffer.from(b));
}

/**
 * Task records in Redis, in the FC `AsyncTask` shape, seen alike by every instance. Writes
 * are compare-and-sets on a version (Lua), so that two instances racing on a task (a stop
 * and an attempt) cannot both win. Stop requests travel on a pub/sub channel.
 */
export class RedisTaskStore implements TaskStore {
  private readonly redis: RedisClient & Scripts;
  private readonly cache = new Map<string, { v: string; w: string; record: TaskRecord }>();
  private readonly stopListeners: ((taskId: string) => void)[] = [];
  private readonly missedListeners: (() => void)[] = [];
  private inserts: PendingInsert[] = [];
  /** Listeners of `watch`, and what follows the queue's events while there are any. */
  private readonly watchers = new Set<(taskIds: readonly string[]) => void>();
  private tail: EventTail | undefined;
  /** What makes each write's token unique: this store's random prefix and a counter. */
  private readonly tokenPrefix = randomBytes(8).toString('hex');
  private writeCount = 0;
  /** Set by close(): the task API then answers 503 `ServiceUnavailable`, as the other stores do. */
  private closed = false;

  /** Runs before the connections close (stops retention). */
  onClose: (() => void) | undefined;
  /** Where the watch's reader tells a refusal of its reads (see EventTail). */
  logger: Logger | undefined;

  constructor(
    redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly keys: Keys,
    /**
     * Whether to keep the records this instance inserts: true when it runs tasks (`worker`), whose
     * attempts then start without a read. An accept-only instance would only hold each record (its
     * body too) until {@link CACHE_SIZE} later ones pushed it out: memory, and garbage collection on
     * every accept (paired, about 5 % of an accept's time; full GCs 5 to 1 per 14,000 accepts).
     */
    private readonly keepInserted = true,
    /**
     * How long a claim Redis did not answer in time is read back for, from when it was sent: the
     * job's lock (`lockDurationMs`), which holds the job for this instance while Redis stalls.
     * Past it the lock may be gone and another instance may find the task; before it, giving up
     * would count an attempt that never ran (and, with no retries left, fail the task unrun).
     */
    private readonly confirmWithinMs = CONFIRM_WITHIN_MS,
  ) {
    redis.defineCommand('fcAsyncInsert', { numberOfKeys: 5, lua: INSERT_SCRIPT });
    redis.defineCommand('fcAsyncInsertMany', { lua: INSERT_MANY_SCRIPT });
    redis.defineCommand('fcAsyncCas', { numberOfKeys: 3, lua: CAS_SCRIPT });
    redis.defineCommand('fcAsyncList', { numberOfKeys: 1, lua: LIST_SCRIPT });
    redis.defineCommand('fcAsyncPublish', { numberOfKeys: 1, lua: PUBLISH_SCRIPT });
    this.redis = redis as RedisClient & Scripts;
    subscriber.on('message', (channel: string, taskId: string) => {
      if (channel !== keys.stop) return;
      for (const listener of this.stopListeners) listener(taskId);
      // A stop of a running task is written (Stopping) before it is published.
      if (this.watchers.size > 0) this.changed([taskId]);
    });
  }

  /**
   * Subscribes to stop requests; resolves once subscribed. Redis drops what is published while a
   * subscriber is disconnected: after each reconnection, once subscribed again, the
   * {@link onStopsMayBeMissed} listeners look for the stops they may have missed.
   */
  async listen(): Promise<void> {
    await this.subscriber.subscribe(this.keys.stop);
    this.subscriber.on('ready', this.resubscribed);
  }

  onStopsMayBeMissed(listener: () => void): void {
    this.missedListeners.push(listener);
  }

  private readonly resubscribed = (): void => {
    this.subscriber.subscribe(this.keys.stop).then(
      () => {
        for (const listener of this.missedListeners) listener();
      },
      () => {}, // down again: the next reconnection looks
    );
  };

  /**
   * Inserts a task. The inserts of one turn (a burst of requests) go out together, in one script,
   * at the end of the turn's current microtasks: a job the queue adds for a task afterwards on
   * this connection is still sent after its record. A task the queue refused (`Invalid`) is
   * replaced, unless a job of its id is still in the queue (see INSERT_SCRIPT). Another instance's
   * cached copy of the refused task is no hazard: every write checks the version and the token of
   * the write it read (the replacing insert's are new), and the engine decides to skip a task only on a
   * fresh read.
   */
  insert(record: TaskRecord): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.inserts.length === 0) queueMicrotask(this.flushInserts);
      this.inserts.push({ record, resolve, reject });
    });
  }

  /**
   * A token stored with what a write writes, by which a resent write knows the task is its own
   * (and a compare-and-set, that the task is the one it read).
   */
  private token(): string {
    return `${this.tokenPrefix}:${(this.writeCount++).toString(36)}`;
  }

  private readonly flushInserts = (): void => {
    const batch = this.inserts;
    this.inserts = [];
    const k = this.keys;
    const keys: string[] = [];
    const args: (string | Buffer)[] = [];
    const tokens: string[] = [];
    for (const { record } of batch) {
      const token = this.token();
      tokens.push(token);
      const [open, endTime] = indexArgs(record);
      keys.push(k.task(record.taskId), k.job(record.taskId));
      args.push(
        record.taskId,
        String(record.startedTime ?? 0),
        record.status,
        encodeCompactRecord(record),
        open,
        endTime,
      );
      args.push(encodeRequestHead(record.payload), bodyArg(record.payload.body), token);
    }
    const sent =
      batch.length === 1
        ? this.redis
            .fcAsyncInsert(keys[0] as string, k.open, k.ended, k.byTime, keys[1] as string, ...args)
            .then((added) => [added])
        : this.redis.fcAsyncInsertMany(3 + keys.length, k.open, k.ended, k.byTime, ...keys, ...args);
    sent.then(
      (added) => {
        for (const [i, { record, resolve }] of batch.entries()) {
          if (added[i] === 1 && this.keepInserted) this.remember(record.taskId, '1', tokens[i] as string, record);
          resolve(added[i] === 1);
        }
      },
      (cause: unknown) => {
        const error = notAccepted(cause);
        for (const { reject } of batch) reject(error);
      },
    );
  };

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return (await this.read(taskId))?.record;
  }

  /** This instance's cached copy when it has one (the task it accepted or last wrote), else a read. */
  peek(taskId: string): TaskRecord | undefined | Promise<TaskRecord | undefined> {
    return this.cache.get(taskId)?.record ?? this.get(taskId);
  }

  /** The task as this instance last read or wrote it, while it is cached; no round trip. */
  lastSeen(taskId: string): TaskRecord | undefined {
    return this.cache.get(taskId)?.record;
  }

  transition(taskId: string, status: AsyncTaskStatus, options: TransitionOptions): Promise<TaskRecord | undefined> {
    // A claim (to Running) whose answer Redis did not give in time is confirmed (see `write`).
    return this.write(taskId, (current) => transitionedRecord(current, status, options), status === 'Running');
  }

  async update(taskId: string, patch: TaskPatch): Promise<void> {
    await this.write(taskId, (current) => patchedRecord(current, patch));
  }

  list(query: TaskQuery): Promise<TaskPage<TaskRecord>> {
    this.live();
    return answerOf(listTasks(this.redis, this.keys, query));
  }

  async unfinished(): Promise<TaskRecord[]> {
    const ids = await this.redis.smembers(this.keys.open);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmgetBuffer(this.keys.task(id), 'r', 'p', 'b');
    const replies = (await pipeline.exec()) ?? [];
    const records: TaskRecord[] = [];
    for (const [, value] of replies) {
      const [r, p, b] = value as (Buffer | null)[];
      if (r) records.push(decodeRecord(r.toString(), p?.toString(), b));
    }
    return records.sort((a, b) => (a.startedTime ?? 0) - (b.startedTime ?? 0));
  }

  /**
   * Reports the tasks other instances change, from BullMQ's own event stream (see EventTail) and
   * the stop channel this store listens to anyway: no command is added to accepting or running a
   * task. The stream is followed, on a connection of its own, only while a listener is subscribed.
   */
  watch(listener: (taskIds: readonly string[]) => void): () => void {
    this.watchers.add(listener);
    if (!this.tail && !this.closed)
      this.tail = new EventTail(this.redis, this.keys, (ids) => this.changed(ids), this.logger);
    return () => {
      if (!this.watchers.delete(listener) || this.watchers.size > 0) return;
      this.tail?.stop();
      this.tail = undefined;
    };
  }

  private changed(taskIds: readonly string[]): void {
    for (const listener of this.watchers) listener(taskIds);
  }

  onStopRequested(listener: (taskId: string) => void): void {
    this.stopListeners.push(listener);
  }

  async requestStop(taskId: string): Promise<void> {
    this.live();
    await answerOf(this.redis.fcAsyncPublish(this.keys.stop, taskId));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.tail?.stop();
    this.tail = undefined;
    this.onClose?.();
    // QUIT waits for Redis's answer, behind the commands still unanswered: with Redis frozen, up to
    // commandTimeoutMs. Past QUIT_GRACE_MS the connections are dropped instead, not waited for:
    // nothing is lost, Redis runs what it was sent when it wakes, and a job this instance held goes
    // back once its lock expires.
    const quits = Promise.allSettled([this.redis.quit(), this.subscriber.quit()]);
    if (!(await settlesWithin(quits, QUIT_GRACE_MS))) {
      this.redis.disconnect();
      this.subscriber.disconnect();
    }
  }

  /** Forgets cached records (after retention deleted them). */
  forget(taskIds: readonly string[]): void {
    for (const id of taskIds) this.cache.delete(id);
  }

  /** Throws a 503 `ServiceUnavailable` once the store is closed (its connections are gone). */
  private live(): void {
    if (this.closed) throw storeClosed();
  }

  private async read(taskId: string): Promise<Versioned | undefined> {
    this.live();
    const [vb, wb, r, p, b] = await answerOf(this.redis.hmgetBuffer(this.keys.task(taskId), 'v', 'w', 'r', 'p', 'b'));
    if (!vb || !r) {
      this.cache.delete(taskId);
      return undefined;
    }
    const v = vb.toString();
    const w = wb?.toString() ?? '';
    const record = decodeKept(r, p, b);
    this.remember(taskId, v, w, record);
    return { v, w, record, cached: false };
  }

  /** Compare-and-set loop: `change` returns the new record, or `undefined` to write nothing. */
  private async write(
    taskId: string,
    change: (current: TaskRecord) => TaskRecord | undefined,
    confirm = false,
  ): Promise<TaskRecord | undefined> {
    this.live();
    const hit = this.cache.get(taskId);
    let current: Versioned | undefined = hit
      ? { v: hit.v, w: hit.w, record: hit.record, cached: true }
      : await this.read(taskId);
    for (let tries = 0; current && tries < 20; tries++) {
      const next = change(current.record);
      if (!next) {
        if (!current.cached) return undefined;
        current = await this.read(taskId); // the cached copy may be stale: decide on a fresh one
        continue;
      }
      const k = this.keys;
      const [open, endTime] = indexArgs(next);
      const encoded = encodeCompactRecord(next);
      const written = String(Number(current.v) + 1);
      const token = this.token();
      const sentAt = Date.now();
      const sent = this.redis.fcAsyncCasBuffer(
        ...[k.task(taskId), k.open, k.ended],
        ...[taskId, current.v, next.status, encoded, open, endTime, current.w, token],
      );
      let reply: CasReply;
      try {
        reply = await answerOf(sent);
      } catch (error) {
        if (!confirm || !unansweredInTime(error)) throw error;
        // Sent, not answered in time (Redis stalled): Redis runs it when it wakes. Whether it won
        // is read once Redis answers, so that a claim that won is not taken for one that failed
        // (its attempt would be counted interrupted without having started, and its job left to a retry).
        const seen = await this.confirmed(taskId, error, sentAt);
        if (!seen) return undefined;
        if (seen.v === written && seen.w === token) {
          this.remember(taskId, written, token, next, open === '0');
          return next;
        }
        current = seen;
        continue;
      }
      if (reply[0] === 1) {
        this.remember(taskId, written, token, next, open === '0');
        return next;
      }
      if (reply[0] === -1) {
        this.cache.delete(taskId);
        return undefined;
      }
      const [, vb, wb, r, p, b] = reply;
      const v = vb.toString();
      const w = wb.toString();
      if (v === written && w === token) {
        // Our own write: Redis applied it, the reply was lost with the connection, and ioredis
        // sent the script again after reconnecting. The write won; reporting a lost race would
        // skip the task's next step (its destination call). Another instance's write of the very
        // same record (two stops in one millisecond) has a token of its own: that race is lost.
        this.remember(taskId, written, token, next, open === '0');
        return next;
      }
      current = { v, w, record: decodeKept(r, p, b), cached: false };
      this.remember(taskId, v, w, current.record);
    }
    if (!current) return undefined;
    throw new Error(`Task ${taskId} kept changing during 20 compare-and-set attempts`);
  }

  /**
   * The task as Redis holds it once it answers a read again (after a write it did not answer in
   * time: that write has run by then, as one connection's commands run in order), read again
   * while each read times out, until `confirmWithinMs` after the write was sent (`sentAt`); then
   * rejects with `unanswered`, as it does at once on any other error (the store closed, say).
   */
  private async confirmed(taskId: string, unanswered: unknown, sentAt: number): Promise<Versioned | undefined> {
    for (;;) {
      try {
        return await this.read(taskId);
      } catch (error) {
        if (!unansweredInTime(error) || Date.now() - sentAt >= this.confirmWithinMs) throw unanswered;
      }
    }
  }

  private remember(taskId: string, v: string, w: string, record: TaskRecord, done = false): void {
    this.cache.delete(taskId);
    if (done) return;
    this.cache.set(taskId, { v, w, record });
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
  }
}
