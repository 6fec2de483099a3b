import { type Logger, RetentionPruner } from '@fc-async/core';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import type { ResolvedBullmqOptions } from './options.js';

/** Tasks deleted per step. */
const BATCH = 500;

/**
 * Retention: finished tasks older than `retentionMs`, then the oldest finished past `maxTasks`,
 * deleted on a timer in steps of {@link BATCH}. Every instance prunes; deleting twice is harmless.
 */
export class Pruner extends RetentionPruner {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: ResolvedBullmqOptions,
    logger: Logger,
    private readonly forget: (taskIds: string[]) => void,
  ) {
    super(options.pruneIntervalMs, BATCH, logger);
  }

  protected async step(): Promise<number> {
    const cutoff = Date.now() - this.options.retentionMs;
    let ids = (await this.redis.zrangebyscore(this.keys.ended, '-inf', `(${cutoff}`, 'LIMIT', 0, BATCH)) as string[];
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
    if (ids.length === 0 || this.stopped) return 0;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.del(this.keys.task(id));
    pipeline.zrem(this.keys.byTime, ...ids);
    pipeline.zrem(this.keys.ended, ...ids);
    await pipeline.exec();
    this.forget(ids);
    return ids.length;
  }
}
