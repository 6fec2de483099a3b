import { type Stats, statSync } from 'node:fs';
import { FcAsyncError, type Logger } from '@fc-async/core';
import type Database from 'better-sqlite3';

/**
 * Guards the store's connection: a use after close is a 503, and an accept is refused once the
 * file was deleted or moved away (the connection would go on writing to a file nobody finds again:
 * every task accepted then would be lost on the next start).
 */
export class TaskFile {
  private readonly file: string;
  private readonly opened: Stats | undefined;
  /** The file was found in place in this turn of the event loop. */
  private checked = false;
  private reported = false;

  constructor(
    private readonly db: Database.Database,
    private readonly logger: Logger,
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

  /** Before an accept (once per turn): throws a 503 `SqliteStoreUnavailable` when the file is gone. */
  inPlace(): void {
    this.live();
    if (this.checked) return;
    const now = statSync(this.file, { throwIfNoEntry: false });
    if (now && this.opened && now.ino === this.opened.ino && now.dev === this.opened.dev) {
      this.checked = true;
      setImmediate(this.endTurn);
      return;
    }
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

  private readonly endTurn = (): void => {
    this.checked = false;
  };
}
