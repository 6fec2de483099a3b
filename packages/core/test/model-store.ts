import {
  type AsyncBackend,
  type AsyncTaskStatus,
  type MemoryBackendOptions,
  MemoryTaskStore,
  PQueueDriver,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  type TransitionOptions,
} from '../src/index.js';
import type { Gen } from './fuzz-gen.js';
import { deferred } from './helpers.js';

/** A copy of a record, as a durable store reads one back (the payload is never written to). */
function copy(record: TaskRecord): TaskRecord {
  return { ...record, events: record.events.map((e) => ({ ...e })) };
}

/**
 * How often a {@link SlowStore}'s writes fail (0 to 1): half of the failures before the write
 * applies, half after (the answer is lost, as with a dropped connection). Inserts fail only
 * before applying: a caller told "failed" must not find the task run. Mutable: a test turns faults
 * off before it closes the handler.
 */
export interface StoreFaults {
  rate: number;
}

/**
 * A {@link MemoryTaskStore} that behaves like a durable one (`@fc-async/sqlite`'s group commit):
 * every write applies at once (its compare-and-set included) but resolves later, after a
 * microtask, a `setImmediate` or a short timer picked by `g`; reads give copies, some of them
 * later too. Linearisable, as a real store is: only the time its answers take differs. With
 * `faults`, some writes reject.
 */
export class SlowStore implements TaskStore {
  constructor(
    private readonly inner: MemoryTaskStore,
    private readonly g: Gen,
    private readonly faults: StoreFaults = { rate: 0 },
  ) {}

  /** `value` after a random delay: a microtask, the next turn, or a timer of up to 20 ms. */
  private later<T>(value: T): Promise<T> {
    const kind = this.g.int(3);
    if (kind === 0) return Promise.resolve(value);
    if (kind === 1) return new Promise((resolve) => setImmediate(() => resolve(value)));
    const ms = 1 + this.g.int(20);
    return new Promise((resolve) => setTimeout(() => resolve(value), ms));
  }

  /** A read: at once half of the time, else later. */
  private read<T>(value: T): T | Promise<T> {
    return this.g.chance(0.5) ? value : this.later(value);
  }

  /** A write: `apply` runs now, or not at all when it fails first; the answer comes later. */
  private write<T>(apply: () => T, mayApplyAndFail = true): Promise<T> {
    if (this.faults.rate > 0 && this.g.chance(this.faults.rate)) {
      if (mayApplyAndFail && this.g.chance(0.5)) apply();
      return this.later(undefined).then(() => Promise.reject(new Error('store unavailable')));
    }
    return this.later(apply());
  }

  insert(record: TaskRecord): Promise<boolean> {
    return this.write(() => this.inner.insert(copy(record)), false);
  }

  get(taskId: string): TaskRecord | undefined | Promise<TaskRecord | undefined> {
    const record = this.inner.get(taskId);
    return this.read(record && copy(record));
  }

  transition(
    taskId: string,
    status: TaskRecord['status'],
    options: TransitionOptions,
  ): Promise<TaskRecord | undefined> {
    return this.write(() => {
      const record = this.inner.transition(taskId, status, options);
      return record && copy(record);
    });
  }

  update(taskId: string, patch: TaskPatch): Promise<void> {
    return this.write(() => this.inner.update(taskId, patch));
  }

  list(query: TaskQuery): TaskPage<TaskRecord> | Promise<TaskPage<TaskRecord>> {
    const page = this.inner.list(query);
    return this.read({ tasks: page.tasks.map(copy), nextToken: page.nextToken });
  }

  unfinished(): Omit<TaskRecord, 'payload'>[] | Promise<Omit<TaskRecord, 'payload'>[]> {
    return this.read(this.inner.unfinished().map(copy));
  }
}

/** The in-process queue over a {@link SlowStore}: a non-persistent backend whose writes resolve late (and may fail). */
export function slowMemory(g: Gen, options: MemoryBackendOptions = {}, faults?: StoreFaults): AsyncBackend {
  return {
    name: 'slow-memory',
    persistent: false,
    create: ({ concurrency }) => ({
      store: new SlowStore(new MemoryTaskStore(options), g, faults),
      queue: new PQueueDriver(concurrency),
    }),
  };
}

/**
 * A memory store whose writes apply at once but answer late, as a durable store's commit does:
 * inserts once `insert` settles (with `failInsert`, the first insert applies and its answer is
 * then an error), claims (moves to Running) once `claim` does. `claiming` settles
 * when a claim was asked for; updates once `update` does. With `fail`, the first write of that
 * status (past `skip` of them) fails: before it applied, or after (its answer lost), at once or
 * once `answer` settles; with `failUpdate`, the first `update` does. With `reads`, read number i
 * (from 0) answers once `reads[i]` settles, or fails when it is `'fail'` (`reading[i]` settles
 * when it began). `kept` limits the tasks kept, as `memory()` does.
 */
export function gatedStore(gates: {
  insert?: Promise<void>;
  failInsert?: boolean;
  claim?: Promise<void>;
  update?: Promise<void>;
  fail?: { status: AsyncTaskStatus; applied: boolean; skip?: number; answer?: Promise<void> } | undefined;
  failUpdate?: { applied: boolean } | undefined;
  reads?: (Promise<void> | 'fail' | undefined)[];
  kept?: MemoryBackendOptions;
}) {
  const inner = new MemoryTaskStore(gates.kept);
  let skipped = 0;
  const claiming = deferred();
  const reading = (gates.reads ?? []).map(() => deferred());
  let readCount = 0;
  const store: TaskStore = {
    insert: (record) => {
      const inserted = inner.insert(record);
      const failed = gates.failInsert === true;
      gates.failInsert = undefined;
      const answer = () => (failed ? Promise.reject(new Error('store unavailable')) : inserted);
      return gates.insert ? gates.insert.then(answer) : answer();
    },
    get: (taskId) => {
      const record = inner.get(taskId);
      const n = readCount++;
      const held = gates.reads?.[n];
      if (!held) return record;
      reading[n]?.resolve();
      if (held === 'fail') return Promise.reject(new Error('store unavailable'));
      // What the task was when read: the memory store changes its records in place.
      const read = record && { ...record, events: [...record.events] };
      return held.then(() => read);
    },
    transition: (taskId, status, options) => {
      const fail = gates.fail;
      if (status === fail?.status && skipped++ >= (fail.skip ?? 0)) {
        if (fail.applied) inner.transition(taskId, status, options);
        gates.fail = undefined;
        const refused = () => Promise.reject(new Error('store unavailable'));
        return fail.answer ? fail.answer.then(refused) : refused();
      }
      const record = inner.transition(taskId, status, options);
      if (status !== 'Running' || !gates.claim) return record;
      claiming.resolve();
      const written = record && { ...record, events: [...record.events] };
      return gates.claim.then(() => written);
    },
    update: (taskId, patch) => {
      const fail = gates.failUpdate;
      if (!fail) {
        inner.update(taskId, patch);
        return gates.update;
      }
      if (fail.applied) inner.update(taskId, patch);
      gates.failUpdate = undefined;
      return Promise.reject(new Error('store unavailable'));
    },
    list: (query) => inner.list(query),
    unfinished: () => inner.unfinished(),
  };
  const backend: AsyncBackend = {
    name: 'gated',
    persistent: false,
    create: ({ concurrency }) => ({ store, queue: new PQueueDriver(concurrency) }),
  };
  return { backend, claiming: claiming.promise, reading: reading.map((d) => d.promise) };
}
