import type { Logger } from '@fc-async/core';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import type { ResolvedBullmqOptions } from './options.js';

/** Tasks deleted per step. */
const BATCH = 500;

/**
 * Retention: finished tasks older than `retentionMs`, then the oldest finished past `maxTasks`,
 * deleted on a timer in steps of {@link BATCH}. Every instance prunes; deleting twice is harmless.
 */
export class Pruner {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: ResolvedBullmqOptions,
    private readonly logger: Logger,
    private readonly forget: (taskIds: string[]) => void,
  ) {
    this.timer = setInterval(() => void this.run(), options.pruneIntervalMs);
    this.timer.unref();
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
        const cutoff = Date.now() - this.options.retentionMs;
        let ids = (await this.redis.zrangebyscore(
          this.keys.ended,
          '-inf',
          `(${cutoff}`,
          'LIMIT',
          0,
          BATCH,
        )) as string[];
        if (ids.length < BATCH) {
          const excess = (await this.redis.zcard(this.keys.ended)) - ids.length - this.options.maxTasks;
          if (excess > 0) {
            const oldest = await this.redis.zrange(
              this.keys.ended,
              ids.length,
              ids.length + Math.min(excess, BATCH - ids.length) - 1,
            );
            ids = [...ids, ...oldest];
          }
        }
        if (ids.length === 0 || this.stopped) break;
        const pipeline = this.redis.pipeline();
        for (const id of ids) pipeline.del(this.keys.task(id));
        pipeline.zrem(this.keys.byTime, ...ids);
        pipeline.zrem(this.keys.ended, ...ids);
        await pipeline.exec();
        this.forget(ids);
        deleted += ids.length;
        if (ids.length < BATCH) break;
      }
    } catch (error) {
      if (!this.stopped) this.logger.error('pruning finished async tasks failed', { error });
    }
    return deleted;
  }
}
