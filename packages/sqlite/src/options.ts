/**
 * Options of the SQLite backend (`sqlite(path, options)`).
 *
 * @example
 * ```ts
 * sqlite('./data/tasks.db', { synchronous: 'normal', maxTasks: 50_000, retentionMs: 24 * 3600 * 1000 });
 * ```
 */
export interface SqliteBackendOptions {
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
  synchronous?: 'full' | 'normal';
  /** Finished tasks kept; past it the oldest finished go first. Unfinished tasks are never dropped. @default 100000 */
  maxTasks?: number;
  /** How long a finished task is kept. @default 7 days */
  retentionMs?: number;
  /** How often finished tasks past `maxTasks` or `retentionMs` are deleted (in batches of 500). @default 60000 */
  pruneIntervalMs?: number;
  /** How long opening waits for a file another process holds before failing. @default 2000 */
  openTimeoutMs?: number;
}

/** {@link SqliteBackendOptions} with every default applied. */
export type ResolvedSqliteOptions = Required<SqliteBackendOptions>;

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;
const KNOWN = new Set(['synchronous', 'maxTasks', 'retentionMs', 'pruneIntervalMs', 'openTimeoutMs']);

function integer(name: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min} and up, got \`${String(value)}\``);
  }
  return value;
}

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
    throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\``);
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
    maxTasks: integer('maxTasks', o.maxTasks, 0, 100_000),
    retentionMs: integer('retentionMs', o.retentionMs, 1, SEVEN_DAYS_MS),
    pruneIntervalMs: integer('pruneIntervalMs', o.pruneIntervalMs, 1, 60_000),
    openTimeoutMs: integer('openTimeoutMs', o.openTimeoutMs, 0, 2000),
  };
}
