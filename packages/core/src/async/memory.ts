import { objectOption } from '../destinations/validate.js';
import type { AsyncTaskStatus } from '../fc-types.js';
import {
  type AsyncBackend,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
  type TransitionOptions,
} from './backend.js';
import { transitionApplies, transitionEvents } from './compact-record.js';
import { PQueueDriver } from './local-queue.js';
import { TimeIndex } from './time-index.js';

export { PQueueDriver } from './local-queue.js';

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
  /**
   * Finished tasks kept; past it the oldest finished go first. Unfinished tasks are never dropped,
   * nor a finished one whose destination is still being called. @default 10000
   */
  maxTasks?: number | undefined;
  /** How long a finished task is kept. @default 7 days */
  retentionMs?: number | undefined;
  /**
   * Bytes of request bodies and answers (`returnPayload`) that finished tasks may hold together;
   * past it the oldest finished go first, as past `maxTasks`. A task near the 128 KB async limit
   * with a 1 MiB answer holds about 1.2 MB, so `maxTasks` alone would let the defaults keep
   * gigabytes. @default 268435456 (256 MiB)
   */
  maxBytes?: number | undefined;
}

/** What a finished record holds that can be large: its request body and its answer. */
function bytesOf(record: TaskRecord | undefined): number {
  if (!record) return 0;
  // An answer's text in UTF-8 bytes: a string's length counts UTF-16 units, which V8 keeps in two
  // bytes each outside Latin-1 (CJK answers held twice the budget when counted by length).
  return (
    record.payload.body.length + (record.returnPayload === undefined ? 0 : Buffer.byteLength(record.returnPayload))
  );
}

/** `Object.assign` for a patch of a few own fields, key by key: several times faster on V8 11. */
function assign(record: TaskRecord, patch: TaskPatch): void {
  const target = record as unknown as Record<string, unknown>;
  const source = patch as Record<string, unknown>;
  for (const key in source) target[key] = source[key];
}

/**
 * Task records in a Map: fast, bounded (see {@link MemoryBackendOptions}), and gone when the
 * process exits.
 *
 * @example
 * ```ts
 * const store = new MemoryTaskStore({ maxTasks: 1000, retentionMs: 3_600_000 });
 * await store.get('t1'); // undefined
 * ```
 */
export class MemoryTaskStore implements TaskStore {
  private readonly tasks = new Map<string, TaskRecord>();
  /** The records in listing order: a page reads from its cursor on, not every task (see {@link TimeIndex}). */
  private readonly byTime = new TimeIndex(this.tasks);
  /**
   * Finished tasks' records in the order they finished, and when, from `head` on (a task finishes
   * once). Eviction deletes that record only: once replaced (an `Invalid` one, see `insert`), its
   * entry holds `undefined`, counts for nothing and evicts nothing.
   */
  private finishedRecords: (TaskRecord | undefined)[] = [];
  private finishedAt: number[] = [];
  /** Entries from `head` on whose record was replaced. */
  private replaced = 0;
  /** The bytes each finished task counted for when it finished (see `bytesOf`), and their sum from `head` on. */
  private finishedBytes: number[] = [];
  private heldBytes = 0;
  private head = 0;
  /** Finished tasks past the limits whose destination call is under way: dropped once it ends. */
  private readonly delivering = new Set<string>();
  private readonly maxTasks: number;
  private readonly retentionMs: number;
  private readonly maxBytes: number;

  constructor(options: MemoryBackendOptions = {}) {
    this.maxTasks = options.maxTasks ?? 10_000;
    this.retentionMs = options.retentionMs ?? SEVEN_DAYS_MS;
    this.maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  }

  /** A task finished (or its destination call ended): it counts against the limits from now. */
  private finished(record: TaskRecord, now: number): void {
    const bytes = bytesOf(record);
    this.finishedRecords.push(record);
    this.finishedAt.push(now);
    this.finishedBytes.push(bytes);
    this.heldBytes += bytes;
    this.evict(now);
  }

  /** A new task, or one that takes the id of a task the queue refused (`Invalid`): see `TaskStore.insert`. */
  insert(record: TaskRecord): boolean {
    const known = this.get(record.taskId);
    if (known !== undefined) {
      if (known.status !== 'Invalid') return false;
      this.unfinish(known);
      // Accepted now: `unfinished()` gives it in the order accepted, which is the Map's.
      this.tasks.delete(record.taskId);
    }
    this.tasks.set(record.taskId, record);
    this.byTime.add(record);
    return true;
  }

  /**
   * Takes a replaced record out of the retention order: its entry would otherwise evict the record
   * that took its id (running or not) once enough tasks finished after it. Searched from the end:
   * the record replaced is one the queue refused moments ago, as a retry follows its 503.
   */
  private unfinish(record: TaskRecord): void {
    this.delivering.delete(record.taskId);
    for (let i = this.finishedRecords.length - 1; i >= this.head; i--) {
      if (this.finishedRecords[i] !== record) continue;
      this.heldBytes -= this.finishedBytes[i] as number;
      this.finishedBytes[i] = 0;
      this.finishedRecords[i] = undefined;
      this.replaced++;
      return;
    }
  }

  get(taskId: string): TaskRecord | undefined {
    const record = this.tasks.get(taskId);
    // Past `retentionMs` with nothing finishing since: gone now, not at the next finish.
    if (record?.endTime !== undefined && record.endTime < Date.now() - this.retentionMs) {
      this.evict(Date.now());
      return this.tasks.get(taskId);
    }
    return record;
  }

  transition(taskId: string, status: AsyncTaskStatus, options: TransitionOptions): TaskRecord | undefined {
    const record = this.tasks.get(taskId);
    if (!record || !transitionApplies(record, options)) return undefined;
    const patch = typeof options.patch === 'function' ? options.patch(record) : options.patch;
    // A change that ends the task happens at its endTime: the event says the same instant.
    const now = patch?.endTime ?? Date.now();
    const events = record.events;
    transitionEvents(events, status, options, now);
    record.status = status;
    if (patch) this.patch(record, patch);
    if (TERMINAL_STATUSES.has(status)) this.finished(record, now);
    return record;
  }

  update(taskId: string, patch: TaskPatch): void {
    const record = this.tasks.get(taskId);
    if (!record) return;
    this.patch(record, patch);
    if (!record.deliveryPending && this.delivering.delete(taskId)) {
      // Its destination call ended: it goes now, as it would have when the limits reached it. Put
      // back in the finish order as if it had just finished, it would outlive the tasks that
      // finished after it, and one of them would go in its place.
      this.tasks.delete(taskId);
      this.byTime.delete(taskId);
    }
  }

  /** Applies `patch`; one that moves the task's startedTime (the engine sets none) reorders the listing. */
  private patch(record: TaskRecord, patch: TaskPatch): void {
    const time = record.startedTime;
    assign(record, patch);
    if (record.startedTime !== time) this.byTime.invalidate();
  }

  list(query: TaskQuery): TaskPage<TaskRecord> {
    this.evict(Date.now());
    return this.byTime.page(query);
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
    const records = this.finishedRecords;
    const at = this.finishedAt;
    const bytes = this.finishedBytes;
    while (this.head < records.length) {
      if (
        records.length - this.head - this.replaced <= this.maxTasks &&
        (at[this.head] as number) >= oldestAllowed &&
        this.heldBytes <= this.maxBytes
      ) {
        break;
      }
      const record = records[this.head];
      this.heldBytes -= bytes[this.head] as number;
      if (record === undefined) {
        this.replaced--; // its id is another task's now: nothing to delete
      } else if (record.deliveryPending) {
        // A task whose destination is still being called keeps its record (and its id) until then.
        this.delivering.add(record.taskId);
      } else if (this.tasks.get(record.taskId) === record) {
        this.tasks.delete(record.taskId);
        this.byTime.delete(record.taskId);
      }
      records[this.head] = undefined;
      this.head++;
    }
    if (this.head >= 1024 && this.head * 2 >= records.length) {
      this.finishedRecords = records.slice(this.head);
      this.finishedAt = at.slice(this.head);
      this.finishedBytes = bytes.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The default backend: the in-process queue and the in-memory task store. Nothing survives
 * the process: tasks accepted and not finished when it dies are lost (docs/async.md).
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, { async: { backend: memory({ maxTasks: 1000 }) } });
 * ```
 */
export function memory(options: MemoryBackendOptions = {}): AsyncBackend {
  objectOption('options', options, 'memory()', ['maxTasks', 'retentionMs', 'maxBytes']);
  if (options.maxTasks !== undefined && !(Number.isInteger(options.maxTasks) && options.maxTasks >= 0)) {
    throw new TypeError(`Expected \`maxTasks\` to be an integer from 0 and up, got \`${String(options.maxTasks)}\``);
  }
  if (options.retentionMs !== undefined && !(typeof options.retentionMs === 'number' && options.retentionMs > 0)) {
    throw new TypeError(`Expected \`retentionMs\` to be a number above 0, got \`${String(options.retentionMs)}\``);
  }
  if (options.maxBytes !== undefined && !(typeof options.maxBytes === 'number' && options.maxBytes >= 0)) {
    throw new TypeError(`Expected \`maxBytes\` to be a number from 0 up, got \`${String(options.maxBytes)}\``);
  }
  return {
    name: 'memory',
    persistent: false,
    create: ({ concurrency }) => ({ store: new MemoryTaskStore(options), queue: new PQueueDriver(concurrency) }),
  };
}
