import { describe, expect, it } from 'vitest';
import { type SqliteBackendOptions, sqlite } from '../src/index.js';

describe('sqlite(path, options)', () => {
  it('returns a persistent backend without touching the disk or the caller’s options', () => {
    const options: SqliteBackendOptions = Object.freeze({ synchronous: 'normal' as const });
    const backend = sqlite('/nonexistent/dir/tasks.db', options);
    expect(backend).toMatchObject({ name: 'sqlite', persistent: true });
    expect(options).toEqual({ synchronous: 'normal' });
  });

  it.each([
    ['', undefined, /Expected `path` to be a non-empty file path, got ``/],
    [42, undefined, /Expected `path` to be a non-empty file path, got `42`/],
    [':memory:', undefined, /in-memory SQLite database keeps nothing/],
    ['t.db', 'fast', /Expected `options` to be an object, got `fast`/],
    ['t.db', { synchronous: 'off' }, /Expected `synchronous` to be 'full' or 'normal', got `off`/],
    ['t.db', { maxTasks: -1 }, /Expected `maxTasks` to be an integer from 0 and up, got `-1`/],
    ['t.db', { retentionMs: 0 }, /Expected `retentionMs` to be an integer from 1 and up, got `0`/],
    ['t.db', { pruneIntervalMs: 1.5 }, /Expected `pruneIntervalMs` to be an integer from 1 and up, got `1.5`/],
    ['t.db', { retention: 5 }, /Unknown sqlite\(\) option `retention`/],
  ])('throws a TypeError for path %j, options %j', (path, options, message) => {
    expect(() => sqlite(path as string, options as SqliteBackendOptions)).toThrow(TypeError);
    expect(() => sqlite(path as string, options as SqliteBackendOptions)).toThrow(message);
  });
});
