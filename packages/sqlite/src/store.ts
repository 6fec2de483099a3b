import {
  type AsyncTaskStatus,
  encodeCompactRecord,
  encodeCursor,
  encodeRequestHead,
  FcAsyncError,
  type Logger,
  normaliseQuery,
  patchedRecord,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
  type TransitionOptions,
  transitionedRecord,
} from '@fc-async/core';
import type Database from 'better-sqlite3';
import { WriteBatch, type WriteOptions } from './batch.js';
import { OpenTasks } from './cache.js';
import { decodeHead, decodeRow, type Row } from './codec.js';
import { TaskFile } from './file.js';
import type { ResolvedSqliteOptions } from './options.js';
import { Pruner } from './prune.js';
import { listSql, prefixRange } from './query.js';

/** 1 while the task still needs work after a restart: not terminal, or its destination not called. */
const isOpen = (record: TaskRecord) => (!TERMINAL_STATUSES.has(record.status) || record.deliveryPending ? 1 : 0);

/** An accepted task's insert: flushed to disk with `synchronous: 'full'`. */
const ACCEPT: WriteOptions = { flush: true, single: true };
/** A status change or an update: one UPDATE. */
const SINGLE: WriteOptions = { single: true };
/**
 * A prefix whose range of task ids holds fewer tasks lists them from that range, sorted (at most
 * this many rows, read by the primary key); one of more walks the time index (see `list`).
 */
const FEW_IDS = 1000;

/**
 * Task records in one SQLite file. Every write resolves only once committed (see
 * {@link WriteBatch}); reads are synchronous. Unfinished tasks are also kept in memory as they
 * are written, within {@link OpenTasks}' bounds (a read adds none: not the start's, see
 * `unfinished`): this process is the file's only writer (exclusive lock), so the copy is never
 * stale. Finished tasks are pruned on a timer in small batches. Once closed, every call throws a
 * 503.
 */
export class SqliteTaskStore implements TaskStore {
  private readonly batch: WriteBatch;
  private readonly pruner: Pruner;
  private readonly statements;
  /** One prepared statement per combination of filters (at most 64). */
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly open = new OpenTasks();
  private readonly file: TaskFile;
  /** Tasks read from rows written by schema 1 (see `write`). */
  private readonly schema1 = new WeakSet<TaskRecord>();
  /** The greatest `end_time` this process wrote (see `endColumn`). */
  private lastEnd = 0;
  /** The furthest a task's `end_time` is raised (see `endColumn`): half the age limit. */
  private readonly maxRaiseMs: number;

  constructor(
    private readonly db: Database.Database,
    options: ResolvedSqliteOptions,
    private readonly logger: Logger,
  ) {
    this.maxRaiseMs = options.retentionMs / 2;
    this.batch = new WriteBatch(db, options.synchronous === 'full', () => this.open.clear());
    this.file = new TaskFile(db, logger, () => this.batch.flush());
    this.statements = {
      // A new task id, or one whose task the queue refused (Invalid): its row is replaced whole,
      // indexed columns included, so that neither listing nor pruning sees the refused task any
      // more (see TaskStore.insert). Any other row is left alone: no change, the id is taken.
      insert: db.prepare(
        `INSERT INTO fc_async_tasks (task_id, status, started_time, end_time, open, record, body, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, started_time = excluded.started_time,
           end_time = excluded.end_time, open = excluded.open, record = excluded.record, body = excluded.body,
           payload = excluded.payload
         WHERE fc_async_tasks.status = 'Invalid'`,
      ),
      get: db.prepare('SELECT record, body, payload FROM fc_async_tasks WHERE task_id = ?'),
      update: db.prepare('UPDATE fc_async_tasks SET status = ?, end_time = ?, open = ?, record = ? WHERE task_id = ?'),
      // Leaves the indexed columns alone: SQLite rewrites an index entry whenever its column is set.
      progress: db.prepare('UPDATE fc_async_tasks SET status = ?, record = ? WHERE task_id = ?'),
      // A finished task's destination call recorded: it leaves `open`, its end (`end_time`) stays.
      settle: db.prepare('UPDATE fc_async_tasks SET status = ?, open = ?, record = ? WHERE task_id = ?'),
      upgrade: db.prepare(
        'UPDATE fc_async_tasks SET status = ?, end_time = ?, open = ?, record = ?, payload = ? WHERE task_id = ?',
      ),
      // Whether a prefix's range of task ids holds fewer than FEW_IDS tasks (see `list`).
      idsIn: db
        .prepare('SELECT count(*) FROM (SELECT 1 FROM fc_async_tasks WHERE task_id >= ? AND task_id < ? LIMIT ?)')
        .pluck(),
      // The record alone: no request, so that a start reads no body (see `unfinished`).
      unfinished: db.prepare(
        'SELECT task_id, record FROM fc_async_tasks WHERE open = 1 ORDER BY started_time, task_id',
      ),
    };
    this.pruner = new Pruner(db, this.batch, options, logger, () => this.file.lookAside());
  }

  insert(record: TaskRecord): Promise<boolean> {
    try {
      this.file.inPlace();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.batch.run(() => {
      const r = record;
      const info = this.statements.insert.run(
        r.taskId,
        r.status,
        r.startedTime ?? 0,
        r.endTime ?? null,
        isOpen(r),
        encodeCompactRecord(r),
        r.payload.body,
        encodeRequestHead(r.payload),
      );
      if (info.changes === 1) this.remember(r);
      return info.changes === 1;
    }, ACCEPT);
  }

  get(taskId: string): TaskRecord | undefined {
    this.file.live();
    const cached = this.open.get(taskId);
    if (cached) return cached;
    const row = this.statements.get.get(taskId) as Row | undefined;
    return row && this.decode(row, taskId);
  }

  /** `get` after committing what is written (see `list`): the task API's read. */
  getCommitted(taskId: string): TaskRecord | undefined {
    this.file.live();
    this.batch.flush();
    return this.get(taskId);
  }

  transition(
    taskId: string,
    status: AsyncTaskStatus,
    options: TransitionOptions,
  ): TaskRecord | undefined | Promise<TaskRecord | undefined> {
    const current = this.get(taskId);
    const next = current && transitionedRecord(current, status, options);
    if (!current || !next) return undefined;
    this.file.lookAside();
    return this.batch.run(() => {
      this.write(next, current);
      return next;
    }, SINGLE);
  }

  update(taskId: string, patch: TaskPatch): Promise<void> | undefined {
    const current = this.get(taskId);
    if (!current) return undefined;
    this.file.lookAside();
    return this.batch.run(() => this.write(patchedRecord(current, patch), current), SINGLE);
  }

  list(query: TaskQuery): TaskPage<TaskRecord> {
    this.file.live();
    const q = normaliseQuery(query);
    // This connection reads the writes of its open transaction: commit them first, so that a list
    // shows only what survives a crash (a destination recorded, then lost to a kill, would be
    // called again while the list said it was done). Listing is the task API's, not the tasks' path.
    this.batch.flush();
    // A prefix of few task ids is read from their range of the primary key (a page of no match
    // costs one index look-up); a prefix of many walks the time index, which the page ends soon.
    const range = q.prefix ? prefixRange(q.prefix) : undefined;
    const few = range && (this.statements.idsIn.get(range[0], range[1], FEW_IDS) as number) < FEW_IDS;
    const { sql, params } = listSql(q, few ? range : undefined);
    let statement = this.listStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    const rows = statement.all(...params) as Row[];
    const tasks = rows.slice(0, q.limit).map((row) => this.decode(row, row.task_id as string));
    const last = tasks[tasks.length - 1];
    return {
      tasks,
      nextToken: rows.length > q.limit && last ? encodeCursor(last.startedTime ?? 0, last.taskId, q) : undefined,
    };
  }

  /**
   * Every unfinished task without its `payload`: a start with a backlog of large requests reads
   * none of their bodies (the engine reads a task with `get` when it runs or delivers it), nor
   * fills the cache with them. Rows are decoded one at a time as SQLite steps through them. A
   * record that cannot be read (damaged on disk) is logged and left out: it would otherwise keep
   * every other task from being recovered.
   */
  unfinished(): Omit<TaskRecord, 'payload'>[] {
    this.file.live();
    const heads: Omit<TaskRecord, 'payload'>[] = [];
    for (const row of this.statements.unfinished.iterate() as IterableIterator<{ task_id: string; record: string }>) {
      try {
        heads.push(decodeHead(row.record));
      } catch (error) {
        this.logger.error('the record of an unfinished task cannot be read (damaged): it is not recovered', {
          file: this.db.name,
          taskId: row.task_id,
          error,
        });
      }
    }
    return heads;
  }

  /** Deletes finished tasks past the retention now (normally done on a timer). */
  prune(): Promise<number> {
    return this.pruner.run();
  }

  close(): void {
    if (!this.db.open) return;
    this.pruner.stop();
    this.batch.flush();
    this.file.rescueAtClose();
    this.db.close();
  }

  /**
   * A task from its row; one written by schema 1 is remembered as such (see `write`). A row that
   * cannot be decoded (damaged on disk: SQLite keeps no checksum of what a page holds) is a 500
   * `SqliteTaskUnreadable` naming the task, the parse error in `cause`.
   */
  private decode(row: Row, taskId: string): TaskRecord {
    let record: TaskRecord;
    try {
      record = decodeRow(row);
    } catch (cause) {
      throw new FcAsyncError(
        'SqliteTaskUnreadable',
        `The record of task ${taskId} in ${this.db.name} cannot be read: it is damaged`,
        { statusCode: 500, cause },
      );
    }
    if (row.payload === null) this.schema1.add(record);
    return record;
  }

  /**
   * Writes `record` over `previous`. A task read from a schema 1 row had its payload in the
   * record: its first write in the compact form sets the payload column too.
   */
  private write(record: TaskRecord, previous: TaskRecord): void {
    const open = isOpen(record);
    const encoded = encodeCompactRecord(record);
    if (this.schema1.has(previous)) {
      const end = this.endColumn(record);
      this.statements.upgrade.run(record.status, end, open, encoded, encodeRequestHead(record.payload), record.taskId);
    } else if ((record.endTime ?? null) === (previous.endTime ?? null)) {
      // A claim, a retry, a delivery recorded: the indexed columns keep their values, and a task's
      // `end_time` the one its end wrote. Written again now, it would be raised to the latest end
      // this process wrote (see `endColumn`): a task whose destination call ended after later
      // tasks finished would be pruned as if it had finished last.
      if (open === isOpen(previous)) this.statements.progress.run(record.status, encoded, record.taskId);
      else this.statements.settle.run(record.status, open, encoded, record.taskId);
    } else {
      this.statements.update.run(record.status, this.endColumn(record), open, encoded, record.taskId);
    }
    this.remember(record, open);
  }

  /**
   * The `end_time` column, which orders pruning past `maxTasks` (oldest finished first): the
   * record's `endTime`, never below one this process wrote before it, so that after the wall
   * clock steps back (NTP correcting it) the task that finished last is not the first deleted;
   * ties go by rowid. The record keeps its own `endTime`; a column raised so only keeps its task
   * longer under `retentionMs`, and by at most half of it: a clock that was far ahead (a machine
   * resumed with a wrong clock, then corrected) must not keep every later task past the age limit.
   */
  private endColumn(record: TaskRecord): number | null {
    const end = record.endTime;
    if (end === undefined) return null;
    if (this.lastEnd - end > this.maxRaiseMs) return end;
    this.lastEnd = Math.max(this.lastEnd, end);
    return this.lastEnd;
  }

  private remember(record: TaskRecord, open = isOpen(record)): void {
    if (open === 0) this.open.delete(record.taskId);
    else this.open.set(record);
  }
}
