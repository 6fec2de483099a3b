import type { Logger } from '../logger.js';

/**
 * Retention for a durable store, on a timer: each pass calls {@link step} until a step deletes
 * fewer than `batchSize` tasks, a turn of the event loop before each step so that requests keep
 * being served in between. A pass already running is joined; a failing pass is logged, never
 * thrown. The timer does not hold the process open.
 *
 * @example
 * ```ts
 * interface Db {
 *   deleteFinishedBefore(time: number, limit: number): Promise<number>;
 * }
 * const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;
 * class Pruner extends RetentionPruner {
 *   constructor(private readonly db: Db, logger: Logger) {
 *     super(60_000, 500, logger);
 *   }
 *   protected step() {
 *     return this.db.deleteFinishedBefore(Date.now() - SEVEN_DAYS_MS, 500);
 *   }
 * }
 * ```
 */
export abstract class RetentionPruner {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<number> | undefined;
  /** Set by {@link stop}; a step may check it. */
  protected stopped = false;

  constructor(
    intervalMs: number,
    private readonly batchSize: number,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => void this.run(), intervalMs);
    this.timer.unref();
  }

  /** Deletes at most `batchSize` finished tasks; resolves to how many it deleted. */
  protected abstract step(): Promise<number>;

  /** One pass; resolves to the number of tasks deleted. A pass already running is joined. */
  run(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer; a pass under way ends after its current step. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async pass(): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.stopped) break;
        const step = await this.step();
        deleted += step;
        if (step < this.batchSize) break;
      }
    } catch (error) {
      if (!this.stopped) this.logger.error('pruning finished async tasks failed', { error });
    }
    return deleted;
  }
}
