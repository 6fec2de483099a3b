import { type Logger, RetentionPruner } from '@fc-async/core';
import type { RedisClient } from './connection.js';
import { type Keys, PRUNE_SCRIPT } from './keys.js';
import type { ResolvedBullmqOptions } from './options.js';

interface Prune {
  fcAsyncPrune(keyCount: number, ...args: string[]): Promise<number>;
}

/** Tasks deleted per step. */
const BATCH = 500;

/**
 * Retention: finished tasks older than `retentionMs`, then the oldest finished past `maxTasks`,
 * deleted on a timer in steps of {@link BATCH}. Every instance prunes: a task is deleted only
 * while still finished (see PRUNE_SCRIPT), so that one deleted by another instance and accepted
 * again under its id since is kept.
 */
export class Pruner extends RetentionPruner {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly options: ResolvedBullmqOptions,
    logger: Logger,
    private readonly forget: (taskIds: string[]) => void,
  ) {
    super(options.pruneIntervalMs, BATCH, logger);
    redis.defineCommand('fcAsyncPrune', { lua: PRUNE_SCRIPT });
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
          String(ids.length + Math.min(excess, BATCH - ids.length) - 1),
        );
        ids = [...ids, ...oldest];
      }
    }
    if (ids.length === 0 || this.stopped) return 0;
    const k = this.keys;
    const redis = this.redis as RedisClient & Prune;
    const deleted = await redis.fcAsyncPrune(2 + ids.length, k.ended, k.byTime, ...ids.map(k.task), ...ids);
    this.forget(ids);
    return deleted;
  }
}
