import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FcAsyncError, isFcAsyncError, makeFolderSync } from '@fc-async/core';
import Database from 'better-sqlite3';
import { createPrivateFile } from './file.js';
import type { ResolvedSqliteOptions } from './options.js';

/**
 * The schema version this package writes (`PRAGMA user_version`). 2 added the `payload` column
 * and a compact `record` (see codec.ts); rows written by 1 are read as they are.
 */
const SCHEMA_VERSION = 2;

/** The size the `-wal` is cut back to when it starts over after a checkpoint (bytes). */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fc_async_tasks (
  task_id TEXT PRIMARY KEY NOT NULL,
  status TEXT NOT NULL,
  started_time INTEGER NOT NULL,
  end_time INTEGER,
  open INTEGER NOT NULL,
  record TEXT NOT NULL,
  body BLOB NOT NULL,
  payload TEXT
);
CREATE INDEX IF NOT EXISTS fc_async_tasks_by_time ON fc_async_tasks (started_time, task_id);
CREATE INDEX IF NOT EXISTS fc_async_tasks_open ON fc_async_tasks (open) WHERE open = 1;
CREATE INDEX IF NOT EXISTS fc_async_tasks_ended ON fc_async_tasks (end_time) WHERE open = 0;
`;

/**
 * Opens (creating when missing) the task database: WAL (the `synchronous` level is set per
 * commit, see WriteBatch), and an exclusive lock held for the life of the connection, so that a second process cannot run the
 * same tasks. Throws an `FcAsyncError` `SqliteStoreLocked` when another process holds the file,
 * `SqliteStoreVersion` for a file of a newer schema, `SqliteStoreUnavailable` for anything else
 * that keeps the file from being opened (not a SQLite file, another application's database, a
 * folder, no permission). A file refused is left as it was.
 */
export function openDatabase(path: string, options: ResolvedSqliteOptions): Database.Database {
  const file = resolve(path);
  try {
    makeFolderSync(dirname(file));
  } catch (error) {
    throw unavailable(file, `its folder cannot be created (${codeOf(error)})`, error);
  }
  createPrivate(file);
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: options.openTimeoutMs });
  } catch (error) {
    const native = nativeModuleProblem(error);
    if (native) throw unavailable(file, native, error);
    throw unavailable(file, `${(error as Error).message} (${codeOf(error)})${whyNotOpened(file)}`, error);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // Checked before anything is written: a file refused here is left byte for byte as it was.
    checkOwnFile(db, file);
    db.pragma('journal_mode = WAL');
    // The -wal grows to hold a group commit and is reused from its start after a checkpoint
    // without shrinking: a burst of large requests would leave it that large until the close.
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    // Takes the lock now rather than at the first write.
    db.exec('BEGIN EXCLUSIVE; COMMIT;');
    db.exec(SCHEMA);
    const columns = db.pragma('table_info(fc_async_tasks)') as { name: string }[];
    if (!columns.some((c) => c.name === 'payload')) db.exec('ALTER TABLE fc_async_tasks ADD COLUMN payload TEXT');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return db;
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new FcAsyncError(
        'SqliteStoreLocked',
        `${file} is in use by another process; one process owns a task file`,
        // Worth another try: the owner may be a process on its way out (a restart's old instance).
        { statusCode: 503, cause: error, retryAfterSeconds: 1 },
      );
    }
    if (isFcAsyncError(error)) throw error;
    throw unavailable(file, `${(error as Error).message} (${codeOf(error)})${whyNotOpened(file)}`, error);
  }
}

/**
 * What SQLite's own words leave out (`unable to open database file` for a folder and for a
 * permission alike, `disk I/O error` on a read-only mount): `: it is a folder`, `: no permission to
 * write its folder`, or nothing when neither is the case.
 */
export function whyNotOpened(file: string): string {
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) return ': it is a folder';
  } catch {
    return ''; // its "folder" is a file (ENOTDIR): SQLite's words say enough
  }
  for (const [path, what] of [
    [file, 'the file'],
    [dirname(file), 'its folder'],
  ] as const) {
    try {
      accessSync(path, constants.W_OK);
    } catch (error) {
      const code = codeOf(error);
      if (code === 'EROFS') return `: ${what} is on a read-only file system`;
      if (code === 'EACCES' || code === 'EPERM') return `: no permission to write ${what}`;
    }
  }
  return '';
}

/**
 * What to do when better-sqlite3's native module cannot be loaded (it is loaded at the first open),
 * or undefined for any other error. Its own words list a dozen paths it tried, or the loader's
 * `NODE_MODULE_VERSION` numbers, and say nothing of the usual causes: an install that skipped the
 * package's install script (npm 12 runs a dependency's install script only when package.json's
 * `allowScripts` approves it), or a `node_modules` built under another Node.js or platform.
 */
function nativeModuleProblem(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : '';
  if (message.startsWith('Could not locate the bindings file')) {
    return (
      "better-sqlite3's native module is not built: its install script did not run (npm 12 runs a " +
      "dependency's install script only when package.json's allowScripts approves it). Run " +
      '`npm install-scripts approve better-sqlite3` (npm 11.16 or later), then `npm rebuild better-sqlite3`'
    );
  }
  if (codeOf(error) === 'ERR_DLOPEN_FAILED' || message.includes('NODE_MODULE_VERSION')) {
    return (
      "better-sqlite3's native module cannot be loaded by this Node.js " +
      `(${process.version}, ${process.platform}-${process.arch}): it was built for another Node.js version or ` +
      `platform. Run \`npm rebuild better-sqlite3\` with the Node.js that runs the app (${firstLine(message)})`
    );
  }
  return undefined;
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * Creates a missing task file readable by its owner only (see {@link createPrivateFile}: at the
 * end of a symbolic link too). A file that exists keeps its mode; anything else (a folder, no
 * permission) is left for the open to report.
 */
function createPrivate(file: string): void {
  try {
    createPrivateFile(file);
  } catch {
    // It exists, or cannot be made: `new Database` names the problem.
  }
}

/**
 * Refuses a SQLite file that is not a task database (another application's: its tables and
 * `user_version` are not ours to change) or one written by a newer schema.
 */
function checkOwnFile(db: Database.Database, file: string): void {
  const tables = (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
      .pluck()
      .all() as string[]
  ).sort();
  const version = db.pragma('user_version', { simple: true }) as number;
  if (!tables.includes('fc_async_tasks') && (tables.length > 0 || version !== 0)) {
    const holds = tables.length > 0 ? `tables ${tables.slice(0, 5).join(', ')}` : `user_version ${version}`;
    throw unavailable(
      file,
      `it is another application's SQLite database (${holds}); give the tasks a file of their own`,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new FcAsyncError(
      'SqliteStoreVersion',
      `${file} was written by a newer @fc-async/sqlite (schema ${version}, this one reads ${SCHEMA_VERSION})`,
      { statusCode: 503 },
    );
  }
  if (tables.includes('fc_async_tasks')) {
    // A table of that name that is not ours (another application's, or hand-made): not ours to change.
    const columns = new Set((db.pragma('table_info(fc_async_tasks)') as { name: string }[]).map((c) => c.name));
    const missing = OWN_COLUMNS.filter((c) => !columns.has(c));
    if (missing.length > 0) {
      throw unavailable(
        file,
        `its table fc_async_tasks is not a task table (no column ${missing.join(', ')}); give the tasks a file of their own`,
      );
    }
  }
}

/** The columns every schema of this package has had (2 added `payload`, which an upgrade adds). */
const OWN_COLUMNS = ['task_id', 'status', 'started_time', 'end_time', 'open', 'record', 'body'];

/**
 * `SqliteStoreUnavailable`: the file cannot be a task database (not SQLite, a folder, read-only,
 * no permission). The file is left as it was.
 */
function unavailable(file: string, reason: string, cause?: unknown): FcAsyncError {
  return new FcAsyncError('SqliteStoreUnavailable', `Cannot open the task file ${file}: ${reason}`, {
    statusCode: 503,
    cause,
  });
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'Error';
}
