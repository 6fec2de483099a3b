import { stat } from 'node:fs/promises';
import { FcAsyncError } from '@fc-async/core';
import type OSS from 'ali-oss';
import { type Credentials, credentialsFromEnv } from './credentials.js';
import type { TranscodeErrorCode } from './errors.js';
import { checkBucket, checkKey, notFound, type Storage, type StorageCallOptions } from './storage.js';

/** Options of {@link OssStorage}. */
export interface OssStorageOptions {
  /** OSS region, e.g. `cn-hangzhou` (`oss-` is added). Required unless `endpoint` is given. */
  region?: string | undefined;
  /** An OSS endpoint (`https://oss-cn-hangzhou-internal.aliyuncs.com`); wins over `region`. */
  endpoint?: string | undefined;
  /** Treat `endpoint` as the bucket's own domain (custom domains, local OSS-compatible servers). @default false */
  cname?: boolean | undefined;
  /** Use the internal endpoint of `region`: free traffic from FC in the same region. @default false */
  internal?: boolean | undefined;
  /** Where credentials come from when a call brings none. @default credentialsFromEnv(process.env), read at each call */
  credentials?: (() => Credentials | undefined) | undefined;
  /** Timeout of one OSS request, ms. @default 600000 */
  timeoutMs?: number | undefined;
}

const MULTIPART_BYTES = 64 * 1024 * 1024;

/**
 * Storage on Alibaba Cloud OSS through the `ali-oss` package, loaded on first use. Credentials
 * are read at each call (FC rotates its STS tokens), from the call's options or else from
 * `options.credentials` (by default the `ALIBABA_CLOUD_*` variables FC 3.0 sets).
 *
 * @example
 * ```ts
 * const storage = new OssStorage({ region: process.env.FC_REGION, internal: true });
 * await storage.download('my-videos', 'in/cat.mov', '/tmp/work/input.mov');
 * ```
 */
export class OssStorage implements Storage {
  private readonly options: Readonly<OssStorageOptions>;
  private sdk: Promise<typeof OSS> | undefined;

  constructor(options: OssStorageOptions) {
    if (!options || (!options.region && !options.endpoint)) {
      throw new TypeError('Expected `region` or `endpoint` in the OssStorage options (set OSS_REGION or OSS_ENDPOINT)');
    }
    if (options.timeoutMs !== undefined && !(Number.isInteger(options.timeoutMs) && options.timeoutMs > 0)) {
      throw new TypeError(
        `Expected \`timeoutMs\` to be an integer from 1 and up, got \`${String(options.timeoutMs)}\``,
      );
    }
    this.options = { ...options };
  }

  locate(bucket: string, key: string): string {
    return `oss://${checkBucket(bucket)}/${checkKey(key, 'key')}`;
  }

  async download(bucket: string, key: string, file: string, call: StorageCallOptions = {}): Promise<void> {
    const client = await this.client(bucket, call);
    try {
      await client.get(checkKey(key, 'key'), file, { timeout: this.timeout() });
    } catch (error) {
      throw storageError(error, bucket, key);
    }
  }

  async upload(bucket: string, key: string, file: string, call: StorageCallOptions = {}): Promise<void> {
    const client = await this.client(bucket, call);
    try {
      const { size } = await stat(file);
      if (size > MULTIPART_BYTES) await client.multipartUpload(checkKey(key, 'key'), file, { timeout: this.timeout() });
      else await client.put(checkKey(key, 'key'), file, { timeout: this.timeout() });
    } catch (error) {
      throw storageError(error, bucket, key);
    }
  }

  async remove(bucket: string, key: string, call: StorageCallOptions = {}): Promise<void> {
    // The clean-up of a stopped job runs once its signal aborted: the signal does not stop it.
    const client = await this.client(bucket, { ...call, signal: undefined });
    try {
      // OSS answers 204 for a missing key too.
      await client.delete(checkKey(key, 'key'), { timeout: this.timeout() });
    } catch (error) {
      throw storageError(error, bucket, key);
    }
  }

  private timeout(): number {
    return this.options.timeoutMs ?? 600_000;
  }

  private credentials(call: StorageCallOptions): Credentials | undefined {
    return call.credentials ?? (this.options.credentials ?? (() => credentialsFromEnv(process.env)))();
  }

  private async refresh(
    call: StorageCallOptions,
  ): Promise<{ accessKeyId: string; accessKeySecret: string; stsToken: string }> {
    const c = this.credentials(call);
    if (!c) throw missingCredentials();
    return { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, stsToken: c.securityToken ?? '' };
  }

  private async client(bucket: string, call: StorageCallOptions): Promise<OSS> {
    call.signal?.throwIfAborted();
    const credentials = this.credentials(call);
    if (!credentials) throw missingCredentials();
    this.sdk ??= import('ali-oss').then((m) => m.default);
    const Client = await this.sdk;
    const region = this.options.region;
    // ali-oss merges options over its defaults: an `undefined` would replace a default.
    return new Client({
      bucket: checkBucket(bucket),
      ...(region ? { region: region.startsWith('oss-') ? region : `oss-${region}` } : {}),
      ...(this.options.endpoint ? { endpoint: this.options.endpoint, cname: this.options.cname === true } : {}),
      ...(this.options.endpoint ? {} : { secure: true, internal: this.options.internal === true }),
      accessKeyId: credentials.accessKeyId,
      accessKeySecret: credentials.accessKeySecret,
      stsToken: credentials.securityToken,
      // With an STS token, ali-oss asks how to refresh it: from the same place, when it is due.
      ...(credentials.securityToken
        ? { refreshSTSToken: () => this.refresh(call), refreshSTSTokenInterval: 300_000 }
        : {}),
      timeout: this.timeout(),
    });
  }
}

function missingCredentials(): FcAsyncError<TranscodeErrorCode> {
  return new FcAsyncError(
    'MissingCredentials',
    'OSS storage needs credentials: give the function a role on FC, or set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET',
    { statusCode: 500 },
  );
}

/**
 * Maps an ali-oss error to a storage error. ali-oss errors carry the request (`params`), so only
 * their name, code, status, message and request id are kept, as the `cause`.
 */
function storageError(error: unknown, bucket: string, key: string): FcAsyncError<TranscodeErrorCode> {
  if (error instanceof FcAsyncError) return error;
  const e = (error ?? {}) as {
    name?: unknown;
    code?: unknown;
    status?: unknown;
    message?: unknown;
    requestId?: unknown;
  };
  const cause = Object.assign(new Error(String(e.message ?? error)), {
    name: String(e.name ?? 'Error'),
    code: e.code,
    status: e.status,
    requestId: e.requestId,
  });
  if (e.code === 'NoSuchKey') return notFound(bucket, key, cause);
  if (e.code === 'NoSuchBucket') {
    return new FcAsyncError('BucketNotFound', `Bucket "${bucket}" does not exist`, { statusCode: 404, cause });
  }
  if (e.status === 403) {
    return new FcAsyncError('StorageAccessDenied', `Access to bucket "${bucket}" was denied`, {
      statusCode: 403,
      cause,
    });
  }
  const what =
    typeof e.status === 'number' ? `HTTP ${e.status} ${String(e.code ?? '')}`.trim() : String(e.name ?? 'an error');
  return new FcAsyncError('StorageError', `OSS failed with ${what}`, { statusCode: 502, cause });
}
