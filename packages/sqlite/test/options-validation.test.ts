import { describe, expect, it } from 'vitest';
import { type SqliteBackendOptions, sqlite } from '../src/index.js';

// Delays are handed to timers (the prune interval) or to SQLite's busy timeout, which hold at
// most 2^31 - 1 ms: past it the prune would run every millisecond and the database would fail
// to open at start-up with better-sqlite3's message, naming no option.
describe('sqlite() options past a timer', () => {
  it.each<[SqliteBackendOptions, string]>([
    [
      { pruneIntervalMs: 2 ** 31 },
      'Expected `pruneIntervalMs` to be an integer from 1 to 2147483647, got `2147483648`',
    ],
    [{ openTimeoutMs: 1e12 }, 'Expected `openTimeoutMs` to be an integer from 0 to 2147483647, got `1000000000000`'],
  ])('refuses %j when called', (options, message) => {
    expect(() => sqlite('/tmp/never-opened.db', options)).toThrow(new TypeError(message));
  });

  it('names an array given as the options', () => {
    expect(() => sqlite('/tmp/never-opened.db', [] as SqliteBackendOptions)).toThrow(
      new TypeError('Expected `options` to be an object, got `array`'),
    );
  });

  it('accepts the largest delays a timer keeps', () => {
    expect(sqlite('/tmp/never-opened.db', { pruneIntervalMs: 2 ** 31 - 1, openTimeoutMs: 2 ** 31 - 1 }).name).toBe(
      'sqlite',
    );
  });
});
