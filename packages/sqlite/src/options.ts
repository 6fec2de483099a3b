import { integerOption, type RetentionOptions, resolveRetentionOptions } from '@fc-async/core';

/**
 * Options of the SQLite backend (`sqlite(path, options)`).
 *
 * Retention (`maxTasks`, `retentionMs`, `pruneIntervalMs`) is core's {@link RetentionOptions}.
 *
 * @example
 * ```ts
 * sqlite('./data/tasks.db', { synchronous: 'normal', maxTasks: 50_000, retentionMs: 24 * 3600 * 1000 });
 * ```
 */
export interface SqliteBackendOptions extends RetentionOptions {
  /**
   * How accepted tasks reach the disk (SQLite's `synchronous`, WAL mode). `full`: an accepted
   * task is flushed to disk (`fsync`) before its 202 is sent, so it survives a power cut or an OS
   * crash. Later progress (running, retrying, the final status) is committed without a flush:
   * it survives the process dying; after a power cut the last steps may be redone (an attempt
   * run again, a destination called again), which at-least-once delivery allows. `normal`: no
   * flush at all: accepted tasks survive the process dying (a crash, `SIGKILL`), but the last
   * ones may be lost if the machine goes down.
   * @default 'full'
   */
  synchronous?: 'full' | 'normal' | undefined;
  /** How long opening waits for a file another process holds before failing. @default 2000 */
  openTimeoutMs?: number | undefined;
}

/** {@link SqliteBackendOptions} with every default applied. */
export type ResolvedSqliteOptions = {
  [K in keyof SqliteBackendOptions]-?: Exclude<SqliteBackendOptions[K], undefined>;
};

/** SQLite's busy timeout is a C int of milliseconds (better-sqlite3 refuses more). */
const MAX_TIMER_MS = 2_147_483_647;

const KNOWN = new Set(['synchronous', 'maxTasks', 'retentionMs', 'pruneIntervalMs', 'openTimeoutMs']);

/** Validates `sqlite()`'s arguments eagerly; the caller's object is never written to. */
export function resolveSqliteOptions(path: unknown, options: unknown): ResolvedSqliteOptions {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new TypeError(`Expected \`path\` to be a non-empty file path, got \`${String(path)}\``);
  }
  if (path === ':memory:' || path.startsWith('file::memory:')) {
    throw new TypeError('Expected `path` to be a file: an in-memory SQLite database keeps nothing; use memory()');
  }
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(
      `Expected \`options\` to be an object, got \`${Array.isArray(options) ? 'array' : String(options)}\``,
    );
  }
  const o = options as SqliteBackendOptions;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown sqlite() option \`${key}\``);
  }
  const synchronous = o.synchronous ?? 'full';
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new TypeError(`Expected \`synchronous\` to be 'full' or 'normal', got \`${String(o.synchronous)}\``);
  }
  return {
    synchronous,
    ...resolveRetentionOptions(o),
    openTimeoutMs: integerOption('openTimeoutMs', o.openTimeoutMs, 0, 2000, MAX_TIMER_MS),
  };
}
