import { closeSync, openSync, readlinkSync, realpathSync, type Stats, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FcAsyncError, type Logger, makeFolderSync } from '@fc-async/core';
import type Database from 'better-sqlite3';

/**
 * Guards the store's connection: a use after close is a 503, and an accept is refused once the
 * file was deleted or moved away (the connection would go on writing to a file nobody finds again:
 * every task accepted then would be lost on the next start). A deleted `-wal` is healed instead:
 * what the connection wrote since goes into the file, and a new `-wal` is started at its path.
 */
export class TaskFile {
  private readonly file: string;
  private readonly opened: Stats | undefined;
  /** When the file (and its `-wal`) are next looked at: see {@link CHECK_EVERY_MS}. */
  private nextCheck = 0;
  /** Whether the last look found the file deleted or moved (accepts are refused meanwhile). */
  private gone = false;
  private reported = false;
  private lookFailed = false;
  /** The `-wal` as first seen (it exists from the connection's first write until its close). */
  private wal: Stats | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly logger: Logger,
    /** Commits the writes of the turn, so that the journal mode can change (see `healWal`). */
    private readonly commit: () => void,
  ) {
    this.file = db.name;
    this.opened = statSync(this.file, { throwIfNoEntry: false });
  }

  /** Throws a 503 `ServiceUnavailable` once the store is closed. */
  live(): void {
    if (!this.db.open) {
      throw new FcAsyncError('ServiceUnavailable', 'The function is shutting down: its task store is closed', {
        statusCode: 503,
      });
    }
  }

  /**
   * Before an accept (at most every {@link CHECK_EVERY_MS}): throws a 503 `SqliteStoreUnavailable`
   * when the file is gone, and heals a deleted `-wal`.
   */
  inPlace(): void {
    this.live();
    this.look();
    if (!this.gone) return;
    if (!this.reported) {
      this.reported = true;
      this.logger.error('the task file was deleted or moved while in use: no task is accepted until a restart', {
        file: this.file,
      });
    }
    throw new FcAsyncError(
      'SqliteStoreUnavailable',
      'The task file was deleted or moved while in use; no task is accepted until the function restarts',
      { statusCode: 503 },
    );
  }

  /**
   * Looks at the file and heals a deleted `-wal` (at most every {@link CHECK_EVERY_MS}), before a
   * progress write and on the prune timer as well as before an accept: tasks accepted before the
   * `-wal` was deleted are in the deleted one until a heal, which a function that accepts nothing
   * more (a burst, then only its attempts running) would otherwise never make. Those commits do
   * not flush to disk, so the `stat` costs them little (see {@link CHECK_EVERY_MS}).
   */
  look(): void {
    const at = performance.now();
    if (at < this.nextCheck || !this.db.open) return;
    const now = statSync(this.file, { throwIfNoEntry: false });
    this.gone = !(now && this.opened && now.ino === this.opened.ino && now.dev === this.opened.dev);
    if (this.gone) return;
    this.walInPlace();
    this.nextCheck = at + CHECK_EVERY_MS;
  }

  /**
   * {@link look} before a progress write or a prune step: a failed look (a heal SQLite refused) is
   * logged once and leaves that write to go on, as it would have without the look.
   */
  lookAside(): void {
    try {
      this.look();
    } catch (error) {
      if (this.lookFailed) return;
      this.lookFailed = true;
      this.logger.error('looking at the task file or healing its -wal failed', { file: this.file, error });
    }
  }

  /**
   * At close, with the file deleted or moved away while in use: what the connection holds (the
   * tasks not finished among it) would go with it, unseen by the next start. A copy is written
   * where the file was, when nothing has taken its place (`VACUUM INTO`), and either way it is said.
   */
  rescueAtClose(): void {
    const now = statSync(this.file, { throwIfNoEntry: false });
    if (now && this.opened && now.ino === this.opened.ino && now.dev === this.opened.dev) return;
    const unfinished = this.db.prepare('SELECT count(*) FROM fc_async_tasks WHERE open = 1').pluck().get() as number;
    if (now) {
      this.logger.error('the task file was replaced while in use: the tasks it held are not in the file now there', {
        file: this.file,
        unfinished,
      });
      return;
    }
    try {
      // Its folder too may have been deleted: made again as the start makes it.
      makeFolderSync(dirname(this.file));
      createPrivateFile(this.file);
      this.db.prepare('VACUUM INTO ?').run(this.file);
      this.logger.error('the task file was deleted or moved while in use: its tasks were written to a new file there', {
        file: this.file,
        unfinished,
      });
    } catch (error) {
      this.logger.error('the task file was deleted or moved while in use: its tasks could not be written again', {
        file: this.file,
        unfinished,
        error,
      });
    }
  }

  /**
   * The `-wal` deleted (or replaced) while the connection is open: the connection goes on writing
   * to the deleted one, which a crash loses with every task accepted since. Its frames are
   * checkpointed into the file and a new `-wal` is started by leaving WAL mode and entering it again.
   */
  private walInPlace(): void {
    const now = statSync(`${this.file}-wal`, { throwIfNoEntry: false });
    if (this.wal === undefined || (now && now.ino === this.wal.ino && now.dev === this.wal.dev)) {
      this.wal = now;
      return;
    }
    this.commit();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.pragma('journal_mode = DELETE');
    this.db.pragma('journal_mode = WAL');
    // A read makes the new -wal, so that its deletion in turn is seen by the next check.
    this.db.prepare('SELECT count(*) FROM sqlite_master').pluck().get();
    this.wal = statSync(`${this.file}-wal`, { throwIfNoEntry: false });
    this.logger.error(
      "the task file's -wal was deleted or replaced while in use: what it held was written into the task file, and a new -wal started",
      { file: this.file },
    );
  }
}

/**
 * How often the store looks for the file and its `-wal` (before an accept, a progress write, a
 * prune step): a `stat` before a commit that syncs to
 * disk made that commit slower by 30-100 µs (measured: an accept at `synchronous: 'full'` went from
 * 240 to 340 µs with both looked at on every one), so at most this often. A file deleted is then
 * noticed within it; what was accepted meanwhile is in the `-wal` a heal writes into the file, or
 * in what close() writes back for a deleted file.
 */
const CHECK_EVERY_MS = 50;

/**
 * Creates the file `path` names, readable by its owner only (it holds request bodies); SQLite
 * gives its `-wal` the same mode. A symbolic link is followed to the file it names, made there:
 * `O_EXCL` refuses a link even to no file, and SQLite would then make the file with its own mode
 * (0644). Throws when the file exists or cannot be made.
 */
export function createPrivateFile(path: string): void {
  closeSync(openSync(linkTarget(path), 'wx', 0o600));
}

/** Where the symbolic links at `path` lead, the file they name not having to exist (at most 40 links, as the OS). */
function linkTarget(path: string): string {
  let current = resolve(path);
  for (let links = 0; links < 40; links++) {
    let link: string;
    try {
      link = readlinkSync(current);
    } catch {
      return current; // not a link (EINVAL), or nothing there
    }
    // Relative to the folder holding the link, as the OS reads it (`..` after a linked folder included).
    current = resolve(realpathSync(dirname(current)), link);
  }
  return current;
}
