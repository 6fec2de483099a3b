import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FcAsyncError } from '@fc-async/core';
import type { Credentials } from './credentials.js';
import type { TranscodeErrorCode } from './errors.js';

/** What a storage call may carry besides its arguments. */
export interface StorageCallOptions {
  /** Aborts a transfer when the task is stopped. */
  signal?: AbortSignal | undefined;
  /** Per-request credentials (FC custom-runtime headers); OSS falls back to the environment. */
  credentials?: Credentials | undefined;
}

/**
 * Where videos are read from and written to: `bucket` plus an object key, as on OSS. Errors are
 * `FcAsyncError`s: 404 `ObjectNotFound` for a missing object, 404 `BucketNotFound`, 403
 * `StorageAccessDenied`.
 *
 * @example
 * ```ts
 * const storage: Storage = new LocalStorage('/tmp/buckets');
 * await storage.download('videos', 'in/cat.mov', '/tmp/work/input.mov');
 * await storage.upload('videos', 'out/cat.mp4', '/tmp/work/out/cat.mp4');
 * await storage.remove('videos', 'out/cat.mp4');
 * ```
 */
export interface Storage {
  /** Copies `<bucket>/<key>` to the local file `file`. */
  download(bucket: string, key: string, file: string, options?: StorageCallOptions): Promise<void>;
  /** Stores the local file `file` as `<bucket>/<key>`. */
  upload(bucket: string, key: string, file: string, options?: StorageCallOptions): Promise<void>;
  /** Deletes `<bucket>/<key>`; a missing object is no error. */
  remove(bucket: string, key: string, options?: StorageCallOptions): Promise<void>;
  /** A readable location for logs and responses: a path or an `oss://` URL. */
  locate(bucket: string, key: string): string;
}

const BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * Checks a bucket name against OSS's rule (3 to 63 lower-case letters, digits and hyphens, not
 * starting or ending with a hyphen). Throws a 400 `InvalidArgument`.
 *
 * @example
 * ```ts
 * checkBucket('videos'); // ok
 * checkBucket('../etc'); // throws
 * ```
 */
export function checkBucket(bucket: unknown): string {
  if (typeof bucket !== 'string' || !BUCKET.test(bucket)) {
    throw invalid(`\`bucket\` must be an OSS bucket name (3-63 of a-z, 0-9 and -), got ${show(bucket)}`);
  }
  return bucket;
}

/**
 * Checks an object key: 1 to 1023 bytes, no leading `/` or `\`, no empty, `.` or `..` segment, no
 * control characters. The same rule keeps keys inside a local bucket folder. Throws a 400
 * `InvalidArgument` naming `field`.
 *
 * @example
 * ```ts
 * checkKey('in/cat.mov', 'object'); // 'in/cat.mov'
 * checkKey('../secret', 'object'); // throws
 * ```
 */
export function checkKey(key: unknown, field: string): string {
  const bytes = typeof key === 'string' ? Buffer.byteLength(key) : 0;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
  const bad = typeof key !== 'string' || bytes === 0 || bytes > 1023 || /[\u0000-\u001f\u007f\\]/.test(key);
  if (bad || (key as string).split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw invalid(`\`${field}\` must be an object key without empty, "." or ".." segments, got ${show(key)}`);
  }
  return key as string;
}

/**
 * Storage in a local folder: each bucket is a sub-folder of `root`, each key a path below it.
 * The default of this example, for development and tests.
 *
 * @example
 * ```ts
 * const storage = new LocalStorage('/tmp/http-video-transcode/buckets');
 * storage.locate('videos', 'out/cat.mp4'); // '/tmp/http-video-transcode/buckets/videos/out/cat.mp4'
 * ```
 */
export class LocalStorage implements Storage {
  readonly root: string;

  constructor(root: string) {
    if (typeof root !== 'string' || root === '') {
      throw new TypeError(`Expected \`root\` to be a folder path, got \`${String(root)}\``);
    }
    this.root = resolve(root);
  }

  locate(bucket: string, key: string): string {
    return join(this.root, checkBucket(bucket), checkKey(key, 'key'));
  }

  async download(bucket: string, key: string, file: string): Promise<void> {
    try {
      await copyFile(this.locate(bucket, key), file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EISDIR') {
        throw notFound(bucket, key, error);
      }
      throw error;
    }
  }

  async upload(bucket: string, key: string, file: string): Promise<void> {
    const target = this.locate(bucket, key);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(file, target);
  }

  async remove(bucket: string, key: string): Promise<void> {
    await rm(this.locate(bucket, key), { force: true });
  }
}

/**
 * The 404 every storage answers for a missing object.
 *
 * @example
 * ```ts
 * throw notFound('videos', 'in/cat.mov'); // 404 ObjectNotFound: Object "in/cat.mov" was not found in bucket "videos"
 * ```
 */
export function notFound(bucket: string, key: string, cause?: unknown): FcAsyncError<TranscodeErrorCode> {
  return new FcAsyncError('ObjectNotFound', `Object "${key}" was not found in bucket "${bucket}"`, {
    statusCode: 404,
    cause,
  });
}

function invalid(message: string): FcAsyncError<TranscodeErrorCode> {
  return new FcAsyncError('InvalidArgument', message, { statusCode: 400 });
}

function show(value: unknown): string {
  if (typeof value !== 'string') return `\`${value === null ? 'null' : typeof value}\``;
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}
