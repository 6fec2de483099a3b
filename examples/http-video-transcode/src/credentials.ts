/**
 * Alibaba Cloud credentials for OSS. They are secrets: never logged, never put in a response,
 * a task record or a destination record.
 *
 * @example
 * ```ts
 * const credentials: Credentials = { accessKeyId: 'STS.x', accessKeySecret: '…', securityToken: '…' };
 * ```
 */
export interface Credentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string | undefined;
}

type Headers = Record<string, string | string[] | undefined>;

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v;
}

/**
 * The credentials FC puts on each request to a custom runtime (and FC 2.0 built-in runtimes):
 * `x-fc-access-key-id`, `x-fc-access-key-secret`, `x-fc-security-token`. `undefined` when absent,
 * for example in a task that fc-async replays locally, where these headers are redacted.
 *
 * @example
 * ```ts
 * const credentials = credentialsFromHeaders(req.headers) ?? credentialsFromEnv(process.env);
 * ```
 */
export function credentialsFromHeaders(headers: Headers): Credentials | undefined {
  const accessKeyId = first(headers['x-fc-access-key-id']);
  const accessKeySecret = first(headers['x-fc-access-key-secret']);
  if (!accessKeyId || !accessKeySecret) return undefined;
  return { accessKeyId, accessKeySecret, securityToken: first(headers['x-fc-security-token']) };
}

/**
 * The credentials FC 3.0 puts in the environment of every instance of a function that has a
 * role: `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
 * `ALIBABA_CLOUD_SECURITY_TOKEN`. Also how you pass a key when running locally against OSS.
 *
 * @example
 * ```ts
 * credentialsFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'id', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'secret' });
 * ```
 */
export function credentialsFromEnv(env: Record<string, string | undefined>): Credentials | undefined {
  const accessKeyId = env.ALIBABA_CLOUD_ACCESS_KEY_ID;
  const accessKeySecret = env.ALIBABA_CLOUD_ACCESS_KEY_SECRET;
  if (!accessKeyId || !accessKeySecret) return undefined;
  return { accessKeyId, accessKeySecret, securityToken: env.ALIBABA_CLOUD_SECURITY_TOKEN || undefined };
}
