import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncOptions, BridgeResponse } from '@fc-async/core';
import { OssStorage } from './oss-storage.js';
import { LocalStorage, type Storage } from './storage.js';

type Env = Record<string, string | undefined>;

/**
 * The folder local buckets live in: `STORAGE_ROOT`, else `<os tmpdir>/http-video-transcode/buckets`
 * (on FC only `/tmp` is writable, so the same default works there and on a laptop).
 *
 * @example
 * ```ts
 * defaultStorageRoot({ STORAGE_ROOT: './data' }); // './data'
 * ```
 */
export function defaultStorageRoot(env: Env = process.env): string {
  return env.STORAGE_ROOT || join(tmpdir(), 'http-video-transcode', 'buckets');
}

/**
 * The storage the environment asks for. `STORAGE=local` (default): {@link LocalStorage} in
 * {@link defaultStorageRoot}. `STORAGE=oss`: {@link OssStorage} in `OSS_REGION` (default
 * `FC_REGION`) or at `OSS_ENDPOINT`, over the internal network when `OSS_INTERNAL=true`, with the
 * credentials FC gives the function's role.
 *
 * @example
 * ```ts
 * const storage = storageFromEnv({ STORAGE: 'oss', FC_REGION: 'cn-hangzhou', OSS_INTERNAL: 'true' });
 * ```
 */
export function storageFromEnv(env: Env = process.env): Storage {
  const kind = (env.STORAGE || 'local').toLowerCase();
  if (kind === 'local') return new LocalStorage(defaultStorageRoot(env));
  if (kind === 'oss') {
    return new OssStorage({
      region: env.OSS_REGION || env.FC_REGION,
      endpoint: env.OSS_ENDPOINT || undefined,
      internal: env.OSS_INTERNAL === 'true',
    });
  }
  throw new TypeError(`Expected \`STORAGE\` to be 'local' or 'oss', got \`${env.STORAGE}\``);
}

/**
 * Whether an async attempt failed: any status from 400 up. A transcode that produced nothing
 * (missing object, bad request, ffmpeg error) is retried and, after the last retry, goes to
 * `onFailure` (`dest-fail`), as FC's best practice expects.
 *
 * @example
 * ```ts
 * transcodeFailed({ statusCode: 404, headers: {}, body: '' }); // true
 * ```
 */
export function transcodeFailed(response: BridgeResponse): boolean {
  return response.statusCode >= 400;
}

/**
 * The async settings of the `transcode` function. They mirror `asyncInvokeConfig` in s.yaml (FC
 * applies those on FC; fc-async uses these when it queues locally, and `maxAsyncRetryAttempts` to
 * know the last attempt in platform mode); `timeoutSeconds` mirrors the function's `timeout`.
 *
 * @example
 * ```ts
 * createHandler(app, { async: { ...TRANSCODE_ASYNC, concurrency: 2 } });
 * ```
 */
export const TRANSCODE_ASYNC = Object.freeze({
  maxAsyncRetryAttempts: 2,
  maxAsyncEventAgeInSeconds: 18_000,
  timeoutSeconds: 7200,
  isFailure: transcodeFailed,
}) satisfies AsyncOptions;
