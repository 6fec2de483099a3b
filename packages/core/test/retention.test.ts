import { describe, expect, it } from 'vitest';
import { RetentionPruner } from '../src/index.js';
import { memoryLogger } from './helpers.js';

/** A pruner over a count of deletable tasks; `fail` makes the next step throw. */
class CountingPruner extends RetentionPruner {
  steps = 0;
  fail = false;
  constructor(
    public left: number,
    logger = memoryLogger(),
  ) {
    super(60_000, 3, logger);
  }
  protected async step(): Promise<number> {
    this.steps++;
    if (this.fail) throw new Error('disk full');
    const n = Math.min(3, this.left);
    this.left -= n;
    return n;
  }
}

describe('RetentionPruner', () => {
  it('repeats steps until one deletes less than a batch, and joins a pass under way', async () => {
    const pruner = new CountingPruner(7);
    const [a, b] = [pruner.run(), pruner.run()];
    expect(a).toBe(b);
    expect(await a).toBe(7);
    expect(pruner.steps).toBe(3);
    expect(pruner.left).toBe(0);
    pruner.stop();
  });

  it('logs a failing pass instead of throwing, and runs nothing after stop()', async () => {
    const logger = memoryLogger();
    const pruner = new CountingPruner(5, logger);
    pruner.fail = true;
    expect(await pruner.run()).toBe(0);
    expect(logger.entries.map((e) => e.message)).toEqual(['pruning finished async tasks failed']);
    pruner.fail = false;
    pruner.stop();
    expect(await pruner.run()).toBe(0);
    expect(pruner.left).toBe(5);
  });
});
