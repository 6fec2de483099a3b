import { type Logger, RetentionPruner } from '@fc-async/core';
import type Database from 'better-sqlite3';
import type { WriteBatch } from './batch.js';
import type { ResolvedSqliteOptions } from './options.js';

/** Rows deleted per step: small enough that a step never holds requests up for long. */
const BATCH = 500;

/**
 * Retention: finished tasks older than `retentionMs`, then the oldest finished past `maxTasks`,
 * deleted on a timer in steps of {@link BATCH} rows, each step its own turn of the event loop
 * (and part of the current group commit), so requests keep being served in between.
 */
export class Pruner extends RetentionPruner {
  private readonly expired: Database.Statement;
  private readonly finishedCount: Database.Statement;
  private readonly oldest: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly batch: WriteBatch,
    private readonly options: ResolvedSqliteOptions,
    logger: Logger,
    /** Run before each step: the store's look at its files (see `TaskFile.look`). */
    private readonly beforeStep: () => void = () => {},
  ) {
    super(options.pruneIntervalMs, BATCH, logger);
    this.expired = db.prepare(
      'DELETE FROM fc_async_tasks WHERE rowid IN (SELECT rowid FROM fc_async_tasks WHERE open = 0 AND end_time < ? ORDER BY end_time LIMIT ?)',
    );
    this.finishedCount = db.prepare('SELECT count(*) FROM fc_async_tasks WHERE open = 0').pluck();
    this.oldest = db.prepare(
      'DELETE FROM fc_async_tasks WHERE rowid IN (SELECT rowid FROM fc_async_tasks WHERE open = 0 ORDER BY end_time, rowid LIMIT ?)',
    );
    setImmediate(() => void this.run());
  }

  /** Deletes at most one batch, as part of the current group commit. */
  protected step(): Promise<number> {
    this.beforeStep();
    return this.batch.run(() => {
      const cutoff = Date.now() - this.options.retentionMs;
      const old = this.expired.run(cutoff, BATCH).changes;
      if (old === BATCH) return old;
      const excess = (this.finishedCount.get() as number) - this.options.maxTasks;
      return old + (excess > 0 ? this.oldest.run(Math.min(excess, BATCH - old)).changes : 0);
    });
  }
}
