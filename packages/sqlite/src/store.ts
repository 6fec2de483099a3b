import {
  type AsyncTaskStatus,
  encodeCursor,
  type Logger,
  normaliseQuery,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
} from '@fc-async/core';
import type Database from 'better-sqlite3';
import { WriteBatch } from './batch.js';
import type { ResolvedSqliteOptions } from './options.js';
import { Pruner } from './prune.js';
import { listSql } from './query.js';

interface Row {
  record: string;
  body: Buffer;
}

/** The record as stored: JSON without the body, which goes in a BLOB column. */
function encode(record: TaskRecord): string {
  const { body: _body, ...payload } = record.payload;
  return JSON.stringify({ ...record, payload });
}

function decode(row: Row): TaskRecord {
  const record = JSON.parse(row.record) as TaskRecord;
  record.payload.body = row.body;
  return record;
}

/** 1 while the task still needs work after a restart: not terminal, or its destination not called. */
const isOpen = (record: TaskRecord) => (!TERMINAL_STATUSES.has(record.status) || record.deliveryPending ? 1 : 0);

/** `current` with `patch` applied; fields patched to `undefined` are removed. */
function patched(current: TaskRecord, patch: Partial<TaskRecord> | undefined): TaskRecord {
  const next: Record<string, unknown> = { ...current, ...patch };
  for (const key in patch) if (next[key] === undefined) delete next[key];
  return next as unknown as TaskRecord;
}

/** Open tasks kept in memory at most; past it they are read from the file. */
const CACHE_SIZE = 50_000;

/**
 * Task records in one SQLite file. Every write resolves only once committed (see
 * {@link WriteBatch}); reads are synchronous. Unfinished tasks are also kept in memory: this
 * process is the file's only writer (exclusive lock), so the copy is never stale. Finished
 * tasks are pruned on a timer in small batches.
 */
export class SqliteTaskStore implements TaskStore {
  private readonly batch: WriteBatch;
  private readonly pruner: Pruner;
  private readonly statements;
  /** One prepared statement per combination of filters (at most 64). */
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly open = new Map<string, TaskRecord>();

  constructor(
    private readonly db: Database.Database,
    options: ResolvedSqliteOptions,
    logger: Logger,
  ) {
    this.batch = new WriteBatch(db, options.synchronous === 'full', () => this.open.clear());
    this.statements = {
      insert: db.prepare(
        'INSERT OR IGNORE INTO fc_async_tasks (task_id, status, started_time, end_time, open, record, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      get: db.prepare('SELECT record, body FROM fc_async_tasks WHERE task_id = ?'),
      update: db.prepare('UPDATE fc_async_tasks SET status = ?, end_time = ?, open = ?, record = ? WHERE task_id = ?'),
      unfinished: db.prepare('SELECT record, body FROM fc_async_tasks WHERE open = 1 ORDER BY started_time, task_id'),
    };
    this.pruner = new Pruner(db, this.batch, options, logger);
  }

  insert(record: TaskRecord): Promise<boolean> {
    return this.batch.run(() => {
      const r = record;
      const info = this.statements.insert.run(
        r.taskId,
        r.status,
        r.startedTime ?? 0,
        r.endTime ?? null,
        isOpen(r),
        encode(r),
        r.payload.body,
      );
      if (info.changes === 1) this.remember(r);
      return info.changes === 1;
    }, true);
  }

  get(taskId: string): TaskRecord | undefined {
    const cached = this.open.get(taskId);
    if (cached) return cached;
    const row = this.statements.get.get(taskId) as Row | undefined;
    return row && decode(row);
  }

  transition(
    taskId: string,
    status: AsyncTaskStatus,
    options: { from: readonly AsyncTaskStatus[]; patch?: TaskPatch; detail?: string; via?: AsyncTaskStatus },
  ): TaskRecord | undefined | Promise<TaskRecord | undefined> {
    const current = this.get(taskId);
    if (!current || !options.from.includes(current.status)) return undefined;
    const now = Date.now();
    const events = [...current.events];
    if (options.via) events.push({ eventId: events.length + 1, status: options.via, timestamp: now, eventDetail: '' });
    events.push({ eventId: events.length + 1, status, timestamp: now, eventDetail: options.detail ?? '' });
    const next = patched({ ...current, status, events }, options.patch);
    return this.batch.run(() => {
      this.write(next);
      return next;
    });
  }

  update(taskId: string, patch: TaskPatch): Promise<void> | undefined {
    const current = this.get(taskId);
    if (!current) return undefined;
    return this.batch.run(() => this.write(patched(current, patch)));
  }

  list(query: TaskQuery): TaskPage<TaskRecord> {
    const q = normaliseQuery(query);
    const { sql, params } = listSql(q);
    let statement = this.listStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    const rows = statement.all(...params) as Row[];
    const tasks = rows.slice(0, q.limit).map(decode);
    const last = tasks[tasks.length - 1];
    return {
      tasks,
      nextToken: rows.length > q.limit && last ? encodeCursor(last.startedTime ?? 0, last.taskId) : undefined,
    };
  }

  unfinished(): TaskRecord[] {
    return (this.statements.unfinished.all() as Row[]).map(decode);
  }

  /** Deletes finished tasks past the retention now (normally done on a timer). */
  prune(): Promise<number> {
    return this.pruner.run();
  }

  close(): void {
    this.pruner.stop();
    this.batch.flush();
    this.db.close();
  }

  private write(record: TaskRecord): void {
    this.statements.update.run(record.status, record.endTime ?? null, isOpen(record), encode(record), record.taskId);
    this.remember(record);
  }

  private remember(record: TaskRecord): void {
    if (isOpen(record) === 0) this.open.delete(record.taskId);
    else if (this.open.has(record.taskId) || this.open.size < CACHE_SIZE) this.open.set(record.taskId, record);
  }
}
