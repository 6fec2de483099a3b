import type { Logger } from '@fc-async/core';
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
export class Pruner {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<number> | undefined;
  private stopped = false;
  private readonly expired: Database.Statement;
  private readonly finishedCount: Database.Statement;
  private readonly oldest: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly batch: WriteBatch,
    private readonly options: ResolvedSqliteOptions,
    private readonly logger: Logger,
  ) {
    this.expired = db.prepare(
      'DELETE FROM fc_async_tasks WHERE rowid IN (SELECT rowid FROM fc_async_tasks WHERE open = 0 AND end_time < ? ORDER BY end_time LIMIT ?)',
    );
    this.finishedCount = db.prepare('SELECT count(*) FROM fc_async_tasks WHERE open = 0').pluck();
    this.oldest = db.prepare(
      'DELETE FROM fc_async_tasks WHERE rowid IN (SELECT rowid FROM fc_async_tasks WHERE open = 0 ORDER BY end_time LIMIT ?)',
    );
    this.timer = setInterval(() => void this.run(), options.pruneIntervalMs);
    this.timer.unref();
    setImmediate(() => void this.run());
  }

  /** One pass; resolves to the number of tasks deleted. A pass already running is joined. */
  run(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async pass(): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        const step = await this.step();
        deleted += step;
        if (step < BATCH || this.stopped) break;
      }
    } catch (error) {
      if (!this.stopped) this.logger.error('pruning finished async tasks failed', { error });
    }
    return deleted;
  }

  /** Deletes at most one batch; waits for the next turn of the event loop first. */
  private async step(): Promise<number> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.stopped) return 0;
    return this.batch.run(() => {
      const cutoff = Date.now() - this.options.retentionMs;
      const old = this.expired.run(cutoff, BATCH).changes;
      if (old === BATCH) return old;
      const excess = (this.finishedCount.get() as number) - this.options.maxTasks;
      return old + (excess > 0 ? this.oldest.run(Math.min(excess, BATCH - old)).changes : 0);
    });
  }
}
