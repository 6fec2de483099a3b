import type { AsyncTaskStatus, TaskPage, TaskPatch, TaskQuery, TaskRecord, TaskStore } from '@fc-async/core';
import type { Redis } from 'ioredis';
import { decodeRecord, encodePayload, encodeRecord, indexArgs } from './codec.js';
import { CAS_SCRIPT, INSERT_SCRIPT, type Keys } from './keys.js';
import { listTasks } from './list.js';

type CasReply = [1] | [-1] | [0, string, string, string];

interface Versioned {
  v: string;
  record: TaskRecord;
  /** Read from this instance's cache: it may be stale. */
  cached: boolean;
}

interface Scripts {
  fcAsyncInsert(...args: string[]): Promise<number>;
  fcAsyncCas(...args: string[]): Promise<CasReply>;
}

/** Records kept to skip a read before a compare-and-set; a stale one costs one extra round trip. */
const CACHE_SIZE = 10_000;

/**
 * Task records in Redis, in the FC `AsyncTask` shape, seen alike by every instance. Writes
 * are compare-and-sets on a version (Lua), so that two instances racing on a task (a stop
 * and an attempt) cannot both win. Stop requests travel on a pub/sub channel.
 */
export class RedisTaskStore implements TaskStore {
  private readonly redis: Redis & Scripts;
  private readonly cache = new Map<string, { v: string; record: TaskRecord }>();
  private readonly stopListeners: ((taskId: string) => void)[] = [];

  /** Runs before the connections close (stops retention). */
  onClose: (() => void) | undefined;

  constructor(
    redis: Redis,
    private readonly subscriber: Redis,
    private readonly keys: Keys,
  ) {
    redis.defineCommand('fcAsyncInsert', { numberOfKeys: 4, lua: INSERT_SCRIPT });
    redis.defineCommand('fcAsyncCas', { numberOfKeys: 3, lua: CAS_SCRIPT });
    this.redis = redis as Redis & Scripts;
    subscriber.on('message', (channel: string, taskId: string) => {
      if (channel !== keys.stop) return;
      for (const listener of this.stopListeners) listener(taskId);
    });
  }

  /** Subscribes to stop requests; resolves once subscribed. */
  async listen(): Promise<void> {
    await this.subscriber.subscribe(this.keys.stop);
  }

  async insert(record: TaskRecord): Promise<boolean> {
    const k = this.keys;
    const [open, endTime] = indexArgs(record);
    const added = await this.redis.fcAsyncInsert(
      ...[k.task(record.taskId), k.open, k.ended, k.byTime],
      ...[record.taskId, String(record.startedTime ?? 0), record.status, encodeRecord(record), open, endTime],
      encodePayload(record.payload),
    );
    if (added === 1) this.remember(record.taskId, '1', record);
    return added === 1;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return (await this.read(taskId))?.record;
  }

  transition(
    taskId: string,
    status: AsyncTaskStatus,
    options: { from: readonly AsyncTaskStatus[]; patch?: TaskPatch; detail?: string; via?: AsyncTaskStatus },
  ): Promise<TaskRecord | undefined> {
    return this.write(taskId, (current) => {
      if (!options.from.includes(current.status)) return undefined;
      const now = Date.now();
      const events = [...current.events];
      if (options.via)
        events.push({ eventId: events.length + 1, status: options.via, timestamp: now, eventDetail: '' });
      events.push({ eventId: events.length + 1, status, timestamp: now, eventDetail: options.detail ?? '' });
      return { ...current, ...options.patch, status, events };
    });
  }

  async update(taskId: string, patch: TaskPatch): Promise<void> {
    await this.write(taskId, (current) => ({ ...current, ...patch }));
  }

  list(query: TaskQuery): Promise<TaskPage<TaskRecord>> {
    return listTasks(this.redis, this.keys, query);
  }

  async unfinished(): Promise<TaskRecord[]> {
    const ids = await this.redis.smembers(this.keys.open);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.task(id), 'r', 'p');
    const replies = (await pipeline.exec()) ?? [];
    const records: TaskRecord[] = [];
    for (const [, value] of replies) {
      const [r, p] = value as [string | null, string | null];
      if (r) records.push(decodeRecord(r, p));
    }
    return records.sort((a, b) => (a.startedTime ?? 0) - (b.startedTime ?? 0));
  }

  onStopRequested(listener: (taskId: string) => void): void {
    this.stopListeners.push(listener);
  }

  async requestStop(taskId: string): Promise<void> {
    await this.redis.publish(this.keys.stop, taskId);
  }

  async close(): Promise<void> {
    this.onClose?.();
    await Promise.allSettled([this.redis.quit(), this.subscriber.quit()]);
  }

  /** Forgets cached records (after retention deleted them). */
  forget(taskIds: readonly string[]): void {
    for (const id of taskIds) this.cache.delete(id);
  }

  private async read(taskId: string): Promise<Versioned | undefined> {
    const [v, r, p] = await this.redis.hmget(this.keys.task(taskId), 'v', 'r', 'p');
    if (!v || !r) {
      this.cache.delete(taskId);
      return undefined;
    }
    const record = decodeRecord(r, p);
    this.remember(taskId, v, record);
    return { v, record, cached: false };
  }

  /** Compare-and-set loop: `change` returns the new record, or `undefined` to write nothing. */
  private async write(
    taskId: string,
    change: (current: TaskRecord) => TaskRecord | undefined,
  ): Promise<TaskRecord | undefined> {
    const hit = this.cache.get(taskId);
    let current: Versioned | undefined = hit ? { ...hit, cached: true } : await this.read(taskId);
    for (let tries = 0; current && tries < 20; tries++) {
      const next = change(current.record);
      if (!next) {
        if (!current.cached) return undefined;
        current = await this.read(taskId); // the cached copy may be stale: decide on a fresh one
        continue;
      }
      const k = this.keys;
      const [open, endTime] = indexArgs(next);
      const reply = await this.redis.fcAsyncCas(
        ...[k.task(taskId), k.open, k.ended],
        ...[taskId, current.v, next.status, encodeRecord(next), open, endTime],
      );
      if (reply[0] === 1) {
        this.remember(taskId, String(Number(current.v) + 1), next, open === '0');
        return next;
      }
      if (reply[0] === -1) {
        this.cache.delete(taskId);
        return undefined;
      }
      const [, v, r, p] = reply;
      current = { v, record: decodeRecord(r, p), cached: false };
      this.remember(taskId, v, current.record);
    }
    if (!current) return undefined;
    throw new Error(`Task ${taskId} kept changing during 20 compare-and-set attempts`);
  }

  private remember(taskId: string, v: string, record: TaskRecord, done = false): void {
    this.cache.delete(taskId);
    if (done) return;
    this.cache.set(taskId, { v, record });
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
  }
}
