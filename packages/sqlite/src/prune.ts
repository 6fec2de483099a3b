import { type Logger, RetentionPruner } from '@fc-async/core';
import type Database from 'better-sqlite3';
import type { WriteBatch } from './batch.js';
import type { ResolvedSqliteOptions } from './options.js';

/** Rows deleted per step: small enough that a step never holds requests up for long. */
const BATCH = 500;

/**
 * Request-body bytes deleted in one turn of the event loop at most (a task larger than this is
 * deleted alone): SQLite reads every page of a body it deletes, about 1 ms a MiB, so 500 tasks of
 * 6 MB in one turn held every request up for seconds (200 of them: 1.4 s measured).
 */
const TURN_BYTES = 8 * 1024 * 1024;

/** A finished task that may be deleted: its row and the size of its request body. */
interface Candidate {
  rowid: number;
  size: number;
}

/**
 * Retention: finished tasks older than `retentionMs`, then the oldest finished past `maxTasks`,
 * deleted on a timer in steps of {@link BATCH} rows, each step its own turn of the event loop
 * (and part of the current group commit), so requests keep being served in between; a step of
 * large requests is spread over several turns, {@link TURN_BYTES} each.
 */
export class Pruner extends RetentionPruner {
  private readonly expired: Database.Statement;
  private readonly finishedCount: Database.Statement;
  private readonly oldest: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly batch: WriteBatch,
    private readonly options: ResolvedSqliteOptions,
    logger: Logger,
    /** Run before each step: the store's look at its files (see `TaskFile.look`). */
    private readonly beforeStep: () => void = () => {},
  ) {
    super(options.pruneIntervalMs, BATCH, logger);
    // `length(body)` reads the size from the row's header, not the body.
    this.expired = db.prepare(
      'SELECT rowid, length(body) AS size FROM fc_async_tasks WHERE open = 0 AND end_time < ? ORDER BY end_time LIMIT ?',
    );
    this.finishedCount = db.prepare('SELECT count(*) FROM fc_async_tasks WHERE open = 0').pluck();
    this.oldest = db.prepare(
      'SELECT rowid, length(body) AS size FROM fc_async_tasks WHERE open = 0 ORDER BY end_time, rowid LIMIT ?',
    );
    this.remove = db.prepare('DELETE FROM fc_async_tasks WHERE rowid IN (SELECT value FROM json_each(?))');
    setImmediate(() => void this.run());
  }

  /** Deletes at most one batch, each turn's share part of that turn's group commit. */
  protected async step(): Promise<number> {
    let deleted = 0;
    for (;;) {
      this.beforeStep();
      const turn = await this.batch.run(() => this.turn(BATCH - deleted));
      deleted += turn.deleted;
      if (!turn.cut || deleted >= BATCH) return deleted;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.stopped) return deleted;
    }
  }

  /** One turn's deletions; `cut` when {@link TURN_BYTES} stopped them before `limit` rows. */
  private turn(limit: number): { deleted: number; cut: boolean } {
    const budget = { deleted: 0, bytes: 0 };
    const cutoff = Date.now() - this.options.retentionMs;
    if (this.delete(this.expired.all(cutoff, limit) as Candidate[], budget))
      return { deleted: budget.deleted, cut: true };
    if (budget.deleted === limit) return { deleted: budget.deleted, cut: false };
    const excess = (this.finishedCount.get() as number) - this.options.maxTasks;
    if (excess <= 0) return { deleted: budget.deleted, cut: false };
    const cut = this.delete(this.oldest.all(Math.min(excess, limit - budget.deleted)) as Candidate[], budget);
    return { deleted: budget.deleted, cut };
  }

  /** Deletes `rows` in order while within {@link TURN_BYTES}; true when it stopped short. */
  private delete(rows: Candidate[], budget: { deleted: number; bytes: number }): boolean {
    let taken = 0;
    for (const row of rows) {
      if (budget.deleted + taken > 0 && budget.bytes + row.size > TURN_BYTES) break;
      taken++;
      budget.bytes += row.size;
    }
    if (taken > 0) this.remove.run(JSON.stringify(rows.slice(0, taken).map((row) => row.rowid)));
    budget.deleted += taken;
    return taken < rows.length;
  }
}
