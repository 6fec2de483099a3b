import { describe, expect, it } from 'vitest';
import { integerOption, RetentionPruner, resolveRetentionOptions } from '../src/index.js';
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

describe('resolveRetentionOptions', () => {
  it('applies the defaults without writing to the caller’s object, and keeps the values given', () => {
    const options = Object.freeze({ retentionMs: 3_600_000 });
    expect(resolveRetentionOptions(options)).toEqual({
      maxTasks: 100_000,
      retentionMs: 3_600_000,
      pruneIntervalMs: 60_000,
    });
    expect(options).toEqual({ retentionMs: 3_600_000 });
    expect(resolveRetentionOptions({ maxTasks: 0, pruneIntervalMs: 1 })).toMatchObject({
      maxTasks: 0,
      pruneIntervalMs: 1,
    });
  });

  it.each([
    [{ maxTasks: -1 }, 'Expected `maxTasks` to be an integer from 0 and up, got `-1`'],
    [{ retentionMs: 0 }, 'Expected `retentionMs` to be an integer from 1 and up, got `0`'],
    [{ pruneIntervalMs: 1.5 }, 'Expected `pruneIntervalMs` to be an integer from 1 and up, got `1.5`'],
    [{ maxTasks: '10' }, 'Expected `maxTasks` to be an integer from 0 and up, got `10`'],
    [{ maxTasks: -1, retentionMs: 0 }, 'Expected `maxTasks` to be an integer from 0 and up, got `-1`'],
  ])('throws a TypeError for %j', (options, message) => {
    expect(() => resolveRetentionOptions(options as object)).toThrow(new TypeError(message));
  });

  it('integerOption: the fallback for undefined, the value from min up, a TypeError below', () => {
    expect(integerOption('openTimeoutMs', undefined, 0, 2000)).toBe(2000);
    expect(integerOption('openTimeoutMs', 0, 0, 2000)).toBe(0);
    expect(() => integerOption('openTimeoutMs', Number.NaN, 0, 2000)).toThrow(
      new TypeError('Expected `openTimeoutMs` to be an integer from 0 and up, got `NaN`'),
    );
  });
});
