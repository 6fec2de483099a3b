import { type BigIntStats, constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { DestinationRecord } from '../fc-types.js';
import { makeFolderSync } from '../folders.js';
import { recordJson } from './record.js';
import type { Destination } from './types.js';
import { objectOption, retriesOption, stringOption } from './validate.js';

/**
 * Options of {@link jsonlDestination}.
 *
 * @example
 * ```ts
 * const options: JsonlDestinationOptions = { retries: 1 };
 * const onSuccess = jsonlDestination('.fc-async/succeeded.jsonl', options);
 * ```
 */
export interface JsonlDestinationOptions {
  /** Retries {@link deliverRecord} allows after a failed append. @default 3 */
  retries?: number | undefined;
}

/**
 * The tail of the append queue of each resolved path, shared by every `jsonlDestination` of this
 * module instance, so that two destinations writing one file never interleave.
 */
const queues = new Map<string, Promise<void>>();

/**
 * A destination that appends each record as one JSON line to a file, creating its folder when
 * missing (again if it is removed later). Appends to one path are serialised within the process,
 * and each line is a single write to a file opened in append mode (`O_APPEND`), so concurrent
 * records never interleave. When the file ends mid-line (an append cut short by a full disk or a
 * crash), the record starts on a new line: the fragment stays, unreadable, and the record is whole.
 * A file it creates is readable by its owner only (mode `0600`): records hold request bodies.
 * Handy for local development and audits.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, { destinations: { onSuccess: jsonlDestination('.fc-async/succeeded.jsonl') } });
 * ```
 */
export function jsonlDestination(path: string, options?: JsonlDestinationOptions): Destination {
  const file = resolve(stringOption('path', path));
  const maxRetries = retriesOption(
    'retries',
    objectOption('options', options, 'jsonlDestination()', ['retries']).retries,
  );

  async function jsonlDestination(record: DestinationRecord): Promise<void> {
    const line = Buffer.from(`${oneLine(recordJson(record))}\n`, 'utf8');
    await enqueue(file, () => appendLine(file, line));
  }
  return Object.assign(jsonlDestination, { maxRetries, label: `jsonl:${file}` });
}

const UNICODE_BREAKS = /[\u0085\u2028\u2029]/g;

/**
 * JSON with the line breaks it may hold raw (NEL, U+2028, U+2029) escaped, so that readers that
 * split on every Unicode line break (editors, Python's `splitlines`) still see one record a line.
 * `\n` and `\r` are always escaped by `JSON.stringify`.
 */
function oneLine(json: string): string {
  return json.replace(UNICODE_BREAKS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Runs `task` after every earlier task of `key`, whatever their outcome. */
function enqueue(key: string, task: () => Promise<void>): Promise<void> {
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.then(task);
  const tail = run.catch(() => {});
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

/**
 * `'a'` plus `O_NONBLOCK`: a FIFO nobody reads fails the open (`ENXIO`, a failed delivery that is
 * retried) instead of blocking one of libuv's four threads for good. A regular file ignores it.
 */
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

const NEWLINE = Buffer.from('\n');

async function appendLine(file: string, line: Buffer): Promise<void> {
  const handle = await openToAppend(file);
  try {
    const stats = await handle.stat({ bigint: true });
    // One write per record, the newline that ends a torn line included, so O_APPEND keeps it whole.
    const data = (await endsMidLine(file, stats)) ? Buffer.concat([NEWLINE, line]) : line;
    // Forgotten until the record is written whole: a write cut short leaves part of a line.
    lineEnds.delete(file);
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await handle.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
    if (stats.isFile()) rememberLineEnd(file, stats, stats.size + BigInt(data.length));
  } finally {
    await handle.close();
  }
}

/** A regular file as this process's last whole append to it left it: ending with that record's newline. */
interface LineEnd {
  dev: bigint;
  ino: bigint;
  birthtimeNs: bigint;
  size: bigint;
}

/**
 * Per resolved path, where this process's last whole append ended, so that the next append,
 * finding the file as it was left, skips reading its last byte (a second open of the file): the
 * same file (device, inode, birth time) of exactly that size ends with the newline written then. Anything else (a
 * first append, another process's since, a file replaced or truncated to another size) reads it.
 * Appends to one path are serialised, so each entry is read and written by one append at a time.
 */
const lineEnds = new Map<string, LineEnd>();

/** Paths remembered at most: one per destination file in practice; the oldest goes first. */
const MAX_LINE_ENDS = 256;

function rememberLineEnd(file: string, stats: BigIntStats, size: bigint): void {
  lineEnds.delete(file);
  if (lineEnds.size >= MAX_LINE_ENDS) {
    const oldest = lineEnds.keys().next().value;
    if (oldest !== undefined) lineEnds.delete(oldest);
  }
  lineEnds.set(file, { dev: stats.dev, ino: stats.ino, birthtimeNs: stats.birthtimeNs, size });
}

/**
 * Opens `file` to append, making its folder when it is missing: on the first record, and again
 * when it was removed since (a cleared `.fc-async/`, a tmp cleaner).
 */
async function openToAppend(file: string): Promise<FileHandle> {
  try {
    // A new file is its owner's only (0600): records hold request bodies.
    return await open(file, APPEND, 0o600);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ENOENT') throw error;
    makeFolderSync(dirname(file));
    return await open(file, APPEND, 0o600);
  }
}

/**
 * Whether a regular file's last byte is not a newline: an append cut short (a full disk, a file
 * size limit, a crash) left part of a line, and the next record would be glued to it. That record
 * then starts with a newline; the fragment stays, as truncating it could cut a line another
 * process appended since. Known without a read when the file is as this process's last whole
 * append left it (see `lineEnds`). A file this process cannot read is appended to as it is.
 */
async function endsMidLine(file: string, stats: BigIntStats): Promise<boolean> {
  if (!stats.isFile() || stats.size === 0n) return false;
  const known = lineEnds.get(file);
  if (
    known !== undefined &&
    known.size === stats.size &&
    known.ino === stats.ino &&
    known.dev === stats.dev &&
    known.birthtimeNs === stats.birthtimeNs
  ) {
    return false;
  }
  let reader: FileHandle;
  try {
    reader = await open(file, 'r');
  } catch {
    return false;
  }
  try {
    const last = Buffer.alloc(1);
    const { bytesRead } = await reader.read(last, 0, 1, Number(stats.size - 1n));
    return bytesRead === 1 && last[0] !== NEWLINE[0];
  } finally {
    await reader.close();
  }
}
