import { FcAsyncError } from '@fc-async/core';
import type Database from 'better-sqlite3';

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  value: unknown;
}

/** How a write is committed. */
export interface WriteOptions {
  /** An accepted task: committed with FULL when the store was opened so. */
  flush?: boolean;
  /** One statement: when it is the first write of its turn, it may commit on its own at once. */
  single?: boolean;
}

const PROGRESS: WriteOptions = {};

/**
 * Group commit: writes run at once inside one open transaction, which is committed after the
 * current turn of the event loop; each write's promise settles when that commit has. A burst of
 * requests in one turn pays for one commit, and no caller hears "done" before its write is
 * committed. Reads on the same connection see the writes at once.
 *
 * Two durability classes: a `flush` write (an accepted task: its 202 depends on it) is committed
 * with `synchronous = FULL` when the store was opened so, i.e. flushed to disk; other writes
 * (task progress) with `synchronous = NORMAL`, which survives the process dying but not the
 * machine losing power, since losing progress only repeats work, which at-least-once allows.
 * SQLite cannot change the level inside a transaction, so a flush write arriving while a
 * NORMAL batch is open commits that batch first and opens a FULL one.
 *
 * A single-statement write that needs no flush to disk, made when no other write is open (no
 * transaction, and every write committed on its own before it already settled, that is its
 * caller has been told), is committed on its own at once (autocommit) rather than opening a
 * transaction. Writes made one after another, each once the previous one is done (a task's
 * claim, then its end, then the next request of a caller waiting for that end: often all in one
 * turn) then save the BEGIN, the COMMIT and a turn of the event loop each, and a NORMAL commit
 * costs no `fsync` to share. Writes made together (a burst's, several tasks' in one turn) find
 * the first one not yet settled and are grouped as above.
 */
export class WriteBatch {
  private open = false;
  private openFull = false;
  private level: 'FULL' | 'NORMAL' | undefined;
  private waiters: Waiter[] = [];
  /** Writes committed on their own whose promise has not settled yet (see above). */
  private unsettled = 0;
  private readonly begin: Database.Statement;
  private readonly end: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    /** Whether flush writes are committed with FULL (else every commit is NORMAL). */
    private readonly full: boolean,
    /** Called when a transaction was rolled back: what was read from it is gone. */
    private readonly onRollback: () => void,
  ) {
    this.begin = db.prepare('BEGIN');
    this.end = db.prepare('COMMIT');
  }

  /** Runs `write` in the open transaction (or on its own, see above); resolves to its value once committed. */
  run<T>(write: () => T, options: WriteOptions = PROGRESS): Promise<T> {
    const full = options.flush === true && this.full;
    if (this.open && full && !this.openFull) this.commit();
    if (!this.open) {
      const level = full ? 'FULL' : 'NORMAL';
      if (this.level !== level) {
        // Not a prepared statement: SQLite applies this pragma when it compiles it, not when it runs.
        this.db.exec(`PRAGMA synchronous = ${level}`);
        this.level = level;
      }
      if (options.single === true && !full && this.unsettled === 0) {
        let value: T;
        try {
          value = write();
        } catch (error) {
          return Promise.reject(writeError(error));
        }
        this.unsettled++;
        const done = Promise.resolve(value);
        // Settles before the caller hears (a reaction added first runs first): a write the caller
        // makes once told finds nothing unsettled; writes made meanwhile are grouped.
        void done.then(this.settled);
        return done;
      }
      this.begin.run();
      this.open = true;
      this.openFull = full;
      setImmediate(this.commit);
    }
    let value: T;
    try {
      value = write();
    } catch (cause) {
      const error = writeError(cause);
      // Errors such as SQLITE_FULL roll the whole transaction back: everyone in it fails.
      if (!this.db.inTransaction) this.fail(error);
      return Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ resolve: resolve as (value: unknown) => void, reject, value });
    });
  }

  /** Commits now (on close). */
  flush(): void {
    if (this.open) this.commit();
  }

  private readonly settled = (): void => {
    this.unsettled--;
  };

  private readonly commit = (): void => {
    if (!this.open) return;
    this.open = false;
    const waiters = this.waiters;
    this.waiters = [];
    try {
      this.end.run();
    } catch (cause) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.onRollback();
      const error = writeError(cause);
      for (const w of waiters) w.reject(error);
      return;
    }
    for (const w of waiters) w.resolve(w.value);
  };

  private fail(error: unknown): void {
    this.open = false;
    this.onRollback();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }
}

/**
 * A write SQLite refused (disk full, read-only file, I/O error) as a 503 `SqliteWriteFailed`:
 * an accept answers it rather than a bare 500, and nothing was committed. Its message names
 * SQLite's code only; the error itself stays in `cause`, for logs. Other errors are unchanged.
 */
function writeError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;
  return new FcAsyncError('SqliteWriteFailed', `The task store could not commit the write (${code}); retry later`, {
    statusCode: 503,
    cause: error,
    retryAfterSeconds: 1,
  });
}
