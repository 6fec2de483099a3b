import type { TaskPage, TaskQuery, TaskRecord } from './backend.js';
import { decodeCursor, encodeCursor, normaliseQuery } from './paging.js';

/** Entries at least, and as many gone as held, before the index drops those gone. */
const COMPACT_FROM = 1024;

/** A record's place: its key, and the record until the map deletes it (then the entry is skipped). */
interface Entry {
  readonly time: number;
  readonly taskId: string;
  record: TaskRecord | undefined;
}

/**
 * The records of a map of tasks in listing order, (startedTime, taskId), so that a page starts
 * where its cursor or time range does and reads on only until it is full: with 100,000 tasks, a
 * page costs what it reads, not a scan and a sort of them all. Tasks are accepted in time order,
 * so a record is nearly always added at the end. A record deleted from the map is let go at once
 * (its entry, a key, stays until the next compaction, skipped meanwhile), so that the index keeps
 * no evicted payload alive.
 *
 * @example
 * ```ts
 * const tasks = new Map<string, TaskRecord>();
 * const index = new TimeIndex(tasks);
 * declare const record: TaskRecord;
 * tasks.set(record.taskId, record);
 * index.add(record);
 * index.page({ limit: 20 }).tasks; // [record]
 * ```
 */
export class TimeIndex {
  /**
   * In listing order; `undefined` until a page needs it (built from the map then, and kept in step
   * from then on), so that a store nobody lists (the front door of a pulse test) keeps no index.
   */
  private entries: Entry[] | undefined;
  /** Each held task's entry. */
  private readonly current = new Map<string, Entry>();
  /** Entries whose record was deleted. */
  private gone = 0;

  constructor(private readonly tasks: ReadonlyMap<string, TaskRecord>) {}

  /** A record the map holds from now (in place of any it held under its id). */
  add(record: TaskRecord): void {
    // Not built yet: the first page builds it from the map.
    if (this.entries === undefined) return;
    // The entry it replaces first: that delete may compact the index, into a new array.
    this.delete(record.taskId);
    const entries = this.entries;
    const entry: Entry = { time: record.startedTime ?? 0, taskId: record.taskId, record };
    this.current.set(record.taskId, entry);
    const last = entries[entries.length - 1];
    if (last === undefined || compareEntry(last, entry.time, entry.taskId) < 0) entries.push(entry);
    else entries.splice(this.lowerBound(entries, entry.time, entry.taskId), 0, entry);
  }

  /** The map deleted `taskId`'s record. */
  delete(taskId: string): void {
    const entry = this.current.get(taskId);
    if (entry === undefined) return;
    this.current.delete(taskId);
    entry.record = undefined;
    this.gone++;
    this.compact();
  }

  /** A record's startedTime changed: the order is rebuilt at the next page. */
  invalidate(): void {
    this.entries = undefined;
    this.current.clear();
    this.gone = 0;
  }

  /** One page of `raw` (FC's ListAsyncTasks), as {@link pageTasks} pages the map's records. */
  page(raw: TaskQuery): TaskPage<TaskRecord> {
    const query = normaliseQuery(raw);
    this.compact();
    const entries = this.sorted();
    const { status, prefix, startedTimeBegin: begin, startedTimeEnd: end, limit } = query;
    const desc = query.sortOrderByTime === 'desc';
    const cursor = query.nextToken === undefined ? undefined : decodeCursor(query.nextToken, query);
    const matches: TaskRecord[] = [];
    const take = ({ record: r }: Entry): boolean => {
      // A record deleted from the map (evicted, or replaced) is skipped.
      if (r === undefined) return false;
      if (status !== undefined && r.status !== status) return false;
      if (prefix !== undefined && !r.taskId.startsWith(prefix)) return false;
      matches.push(r);
      return matches.length > limit;
    };
    if (desc) {
      let i = entries.length - 1;
      if (cursor) i = Math.min(i, this.lowerBound(entries, cursor[0], cursor[1]) - 1);
      // '' sorts before every id: the first entry of the millisecond after `end`.
      if (end !== undefined && end < Number.MAX_SAFE_INTEGER)
        i = Math.min(i, this.lowerBound(entries, end + 1, '') - 1);
      for (; i >= 0; i--) {
        const entry = entries[i] as Entry;
        if (begin !== undefined && entry.time < begin) break;
        if (take(entry)) break;
      }
    } else {
      let i = 0;
      if (cursor) i = this.upperBound(entries, cursor[0], cursor[1]);
      if (begin !== undefined) i = Math.max(i, this.lowerBound(entries, begin, ''));
      for (; i < entries.length; i++) {
        const entry = entries[i] as Entry;
        if (end !== undefined && entry.time > end) break;
        if (take(entry)) break;
      }
    }
    const tasks = matches.slice(0, limit);
    const last = tasks[tasks.length - 1];
    return {
      tasks,
      nextToken: matches.length > limit && last ? encodeCursor(last.startedTime ?? 0, last.taskId, query) : undefined,
    };
  }

  private sorted(): Entry[] {
    if (this.entries === undefined) {
      this.current.clear();
      this.gone = 0;
      const entries: Entry[] = [];
      for (const record of this.tasks.values()) {
        const entry: Entry = { time: record.startedTime ?? 0, taskId: record.taskId, record };
        this.current.set(record.taskId, entry);
        entries.push(entry);
      }
      this.entries = entries.sort((a, b) => compareEntry(a, b.time, b.taskId));
    }
    return this.entries;
  }

  /** Drops the entries of deleted records once they are as many as those held. */
  private compact(): void {
    const entries = this.entries;
    if (entries === undefined || entries.length < COMPACT_FROM || this.gone * 2 < entries.length) return;
    this.entries = entries.filter((entry) => entry.record !== undefined);
    this.gone = 0;
  }

  /** The first position whose key is (time, taskId) or after it. */
  private lowerBound(entries: Entry[], time: number, taskId: string): number {
    let low = 0;
    let high = entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareEntry(entries[mid] as Entry, time, taskId) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The first position whose key is after (time, taskId). */
  private upperBound(entries: Entry[], time: number, taskId: string): number {
    let low = 0;
    let high = entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareEntry(entries[mid] as Entry, time, taskId) <= 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** `entry`'s place against the key (time, taskId): negative before it, 0 at it, positive after. */
function compareEntry(entry: Entry, time: number, taskId: string): number {
  const d = entry.time - time;
  if (d !== 0) return d;
  return entry.taskId < taskId ? -1 : entry.taskId > taskId ? 1 : 0;
}
