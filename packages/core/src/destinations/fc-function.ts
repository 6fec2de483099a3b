import { Readable } from 'node:stream';
import { integerOption } from '../async/retention-options.js';
import type { DestinationRecord } from '../fc-types.js';
import { maskUrl } from '../logger.js';
import { loadSdk, newClient, type Sdk } from './fc-sdk.js';
import { parseFunctionTarget } from './fc-target.js';
import { recordJson } from './record.js';
import { settledWithin } from './timeout.js';
import { type Destination, DestinationError, isRetryableStatus } from './types.js';
import { describe, objectOption, retriesOption, stringOption, timeoutOption } from './validate.js';

export { type FunctionTarget, parseFunctionTarget } from './fc-target.js';

/**
 * Settings for the FC client {@link fcFunctionDestination} builds. Without `endpoint`, it is
 * `{accountId}.{region}.fc.aliyuncs.com`, both taken from here or from an ARN target.
 *
 * @example
 * ```ts
 * const config: FcClientConfig = {
 *   accessKeyId: process.env.ALIBABA_CLOUD_ACCESS_KEY_ID!, accessKeySecret: process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET!,
 *   region: 'cn-hangzhou', accountId: '1234567890123456',
 * };
 * ```
 */
export interface FcClientConfig {
  accessKeyId: string;
  accessKeySecret: string;
  /** For STS credentials. Tokens expire: long-lived processes should pass a prebuilt client with a credential provider. */
  securityToken?: string | undefined;
  /** `host[:port]`, or a URL whose scheme sets `protocol`. @default `{accountId}.{region}.fc.aliyuncs.com` */
  endpoint?: string | undefined;
  /** @default the region of an ARN target */
  region?: string | undefined;
  /** @default the account of an ARN target */
  accountId?: string | undefined;
  /** @default 'https' */
  protocol?: 'http' | 'https' | undefined;
}

/**
 * The part of the official client (`new Client(config)` of `@alicloud/fc20230330`) that
 * {@link fcFunctionDestination} uses. Any instance of that client fits.
 *
 * @example
 * ```ts
 * const client: FcInvokeClient = {
 *   async invokeFunctionWithOptions(functionName) {
 *     console.log('invoke', functionName);
 *     return { statusCode: 202 };
 *   },
 * };
 * const onFailure = fcFunctionDestination('acs:fc:cn-hangzhou:123:functions/dest-fail', client);
 * ```
 */
export interface FcInvokeClient {
  invokeFunctionWithOptions(
    functionName: string,
    request: unknown,
    headers: unknown,
    runtime: unknown,
  ): Promise<{ statusCode?: number; body?: unknown }>;
}

/**
 * Options of {@link fcFunctionDestination}.
 *
 * @example
 * ```ts
 * declare const config: FcClientConfig;
 * const options: FcFunctionDestinationOptions = { timeoutMs: 10_000, retries: 2 };
 * const onFailure = fcFunctionDestination('acs:fc:cn-hangzhou:123:functions/dest-fail', config, options);
 * ```
 */
export interface FcFunctionDestinationOptions {
  /** Time allowed for one InvokeFunction call, in milliseconds. @default 10000 */
  timeoutMs?: number | undefined;
  /** Retries {@link deliverRecord} allows after a retryable failure. @default 3 */
  retries?: number | undefined;
  /**
   * The largest record, in bytes of its JSON, that is sent: FC holds an asynchronous invocation's
   * payload to 128 KB (256 KB once raised for your account) and answers a larger one 400
   * `EntityTooLarge`. A larger record is not sent: the delivery fails at once, not retried, as
   * FC's 400 would. Set it to the limit your account has.
   * @default 131072
   */
  maxPayloadBytes?: number | undefined;
}

/**
 * A destination that invokes an FC function asynchronously (`x-fc-invocation-type: Async`)
 * with the record's JSON as the event, through the official SDK `@alicloud/fc20230330`, an
 * optional peer dependency loaded on first use. A 4xx answer from FC (other than 408 and 429)
 * fails without retry; other errors are retried. A record past `maxPayloadBytes` (FC's async
 * payload limit) is not sent and fails without retry. Credentials never appear in logs or errors.
 *
 * @example
 * ```ts
 * const onFailure = fcFunctionDestination('acs:fc:cn-hangzhou:1234567890123456:functions/dest-fail', {
 *   accessKeyId: process.env.ALIBABA_CLOUD_ACCESS_KEY_ID!,
 *   accessKeySecret: process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET!,
 *   securityToken: process.env.ALIBABA_CLOUD_SECURITY_TOKEN,
 * });
 * ```
 */
export function fcFunctionDestination(
  target: string,
  client: FcClientConfig | FcInvokeClient,
  options?: FcFunctionDestinationOptions,
): Destination {
  const { functionName, qualifier, region, accountId } = parseFunctionTarget(target);
  const opts = objectOption('options', options, 'fcFunctionDestination()', ['timeoutMs', 'retries', 'maxPayloadBytes']);
  const timeoutMs = timeoutOption('timeoutMs', opts.timeoutMs, 10_000);
  const maxRetries = retriesOption('retries', opts.retries);
  const maxPayloadBytes = integerOption('maxPayloadBytes', opts.maxPayloadBytes, 1, FC_ASYNC_PAYLOAD, FC_SYNC_PAYLOAD);
  const prebuilt = isClient(client) ? client : undefined;
  const config = isClient(client) ? undefined : clientConfig(client, region, accountId);
  const label = `fc:${functionName}${qualifier === undefined ? '' : `:${qualifier}`}`;
  let ready: Promise<{ sdk: Sdk; client: FcInvokeClient }> | undefined;

  async function fcFunctionDestination(record: DestinationRecord): Promise<void> {
    const body = Buffer.from(recordJson(record), 'utf8');
    if (body.length > maxPayloadBytes) {
      throw new DestinationError(
        'DestinationInvokeError',
        `InvokeFunction ${label} not sent: the record is ${body.length} bytes, above FC's async payload limit of ${maxPayloadBytes} (EntityTooLarge; maxPayloadBytes)`,
        { retryable: false },
      );
    }
    if (!ready) {
      const loading = loadSdk().then((sdk) => ({ sdk, client: prebuilt ?? newClient(sdk, config!) }));
      ready = loading;
      loading.catch(() => {
        if (ready === loading) ready = undefined; // load again on the next record
      });
    }
    const { sdk, client: fc } = await ready;
    const request = new sdk.InvokeFunctionRequest({
      body: Readable.from([body]),
      ...(qualifier === undefined ? {} : { qualifier }),
    });
    const headers = new sdk.InvokeFunctionHeaders({ xFcInvocationType: 'Async' });
    const runtime = { readTimeout: timeoutMs, connectTimeout: Math.min(timeoutMs, 5000) };
    let response: { statusCode?: number; body?: unknown };
    try {
      // A client that ignores `runtime` (a wrapper, a stub) is held to the same bound.
      const bound = runtime.connectTimeout + runtime.readTimeout + CLIENT_GRACE_MS;
      response = await settledWithin(
        fc.invokeFunctionWithOptions(functionName, request, headers, runtime),
        bound,
        `InvokeFunction ${label} did not settle within ${bound} ms`,
      );
    } catch (error) {
      throw error instanceof DestinationError ? error : invokeError(error, label);
    }
    (response.body as Readable | undefined)?.destroy?.();
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      throw new DestinationError('DestinationInvokeError', `InvokeFunction ${label} answered HTTP ${status}`, {
        retryable: isRetryableStatus(status),
        status,
      });
    }
  }
  return Object.assign(fcFunctionDestination, { maxRetries, label });
}

/** FC's limit of an asynchronous invocation's payload (raisable to 256 KB), and of a synchronous one's. */
const FC_ASYNC_PAYLOAD = 128 * 1024;
const FC_SYNC_PAYLOAD = 32 * 1024 * 1024;

/** Past the SDK's own connect and read timeouts, so that its error (which names the phase) comes first. */
const CLIENT_GRACE_MS = 1000;

function isClient(value: unknown): value is FcInvokeClient {
  return typeof (value as FcInvokeClient | null)?.invokeFunctionWithOptions === 'function';
}

const CLIENT_KEYS = ['accessKeyId', 'accessKeySecret', 'securityToken', 'endpoint', 'region', 'accountId', 'protocol'];

function clientConfig(value: FcClientConfig, arnRegion?: string, arnAccount?: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(
      `Expected \`clientConfig\` to be an FC client or an object with credentials, got \`${describe(value)}\``,
    );
  }
  for (const key of Object.keys(value)) {
    if (!CLIENT_KEYS.includes(key))
      throw new TypeError(`Unknown fcFunctionDestination() option \`clientConfig.${key}\``);
  }
  for (const key of ['region', 'accountId'] as const) {
    if (value[key] !== undefined) stringOption(`clientConfig.${key}`, value[key]);
  }
  if (
    typeof value.accessKeyId !== 'string' ||
    !value.accessKeyId ||
    typeof value.accessKeySecret !== 'string' ||
    !value.accessKeySecret
  ) {
    throw new TypeError(
      'Expected `clientConfig.accessKeyId` and `clientConfig.accessKeySecret` to be non-empty strings',
    );
  }
  if (value.securityToken !== undefined && typeof value.securityToken !== 'string') {
    throw new TypeError(
      `Expected \`clientConfig.securityToken\` to be a string, got \`${typeof value.securityToken}\``,
    );
  }
  let protocol = value.protocol ?? 'https';
  if (protocol !== 'http' && protocol !== 'https') {
    throw new TypeError(`Expected \`clientConfig.protocol\` to be 'http' or 'https', got \`${describe(protocol)}\``);
  }
  const region = value.region ?? arnRegion;
  const accountId = value.accountId ?? arnAccount;
  let endpoint = value.endpoint;
  if (endpoint !== undefined) {
    stringOption('clientConfig.endpoint', endpoint);
    // No user or password: the client signs with the keys, and would drop them unsaid.
    const scheme = /^(https?):\/\/([^/@]+)\/?$/.exec(endpoint);
    if (scheme) {
      protocol = scheme[1] as 'http' | 'https';
      endpoint = scheme[2]!;
    } else if (endpoint.includes('/') || endpoint.includes('@')) {
      throw new TypeError(
        `Expected \`clientConfig.endpoint\` to be host[:port] or an http(s) origin, without a path, user or password, got \`${describe(typeof endpoint === 'string' ? maskUrl(endpoint) : endpoint)}\``,
      );
    }
  } else if (region && accountId) {
    endpoint = `${accountId}.${region}.fc.aliyuncs.com`;
  } else {
    throw new TypeError(
      'Expected `clientConfig.endpoint`, or `clientConfig.region` and `clientConfig.accountId` (or an ARN target that holds them)',
    );
  }
  return {
    accessKeyId: value.accessKeyId,
    accessKeySecret: value.accessKeySecret,
    ...(value.securityToken ? { securityToken: value.securityToken } : {}),
    endpoint,
    protocol,
    ...(region ? { regionId: region } : {}),
  };
}

function invokeError(error: unknown, label: string): DestinationError {
  const e = (error ?? {}) as { statusCode?: unknown; code?: unknown; requestId?: unknown; message?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (status !== undefined) {
    const id = typeof e.requestId === 'string' ? `, request id ${e.requestId}` : '';
    return new DestinationError(
      'DestinationInvokeError',
      `InvokeFunction ${label} failed: ${code ?? 'Error'} (HTTP ${status}${id})`,
      {
        retryable: isRetryableStatus(status),
        status,
        cause: error,
      },
    );
  }
  if (error instanceof SyntaxError) {
    // The SDK reads an error answer as FC's JSON and loses its status when it is not (a 404 page of
    // an endpoint that is no FC API, a proxy's 502 page): an answer all the same, not the network.
    return new DestinationError(
      'DestinationInvokeError',
      `InvokeFunction ${label} failed: the endpoint answered an error that is not FC's JSON (${e.message}); is the endpoint an FC API?`,
      { retryable: true, cause: error },
    );
  }
  const detail = code ?? String(e.message ?? error);
  // The SDK's own timeouts (`runtime.readTimeout`, `connectTimeout`): `ReadTimeout(10000). POST ...`.
  if (/^(Read|Connect)Timeout\b/.test(detail)) {
    return new DestinationError('DestinationTimeout', `InvokeFunction ${label} failed: ${detail}`, {
      retryable: true,
      cause: error,
    });
  }
  return new DestinationError('DestinationNetworkError', `InvokeFunction ${label} failed: ${detail}`, {
    retryable: true,
    cause: error,
  });
}
