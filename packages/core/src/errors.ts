/**
 * The codes of a {@link DestinationError}: why delivering a record failed. Each is also an
 * {@link FcAsyncErrorCode}.
 *
 * - `DestinationHttpError`: the endpoint answered a status other than 2xx (`status` holds it).
 * - `DestinationNetworkError`: no answer (refused, reset, DNS).
 * - `DestinationTimeout`: the attempt took longer than its timeout.
 * - `DestinationAborted`: delivery was cancelled (its signal aborted); never retried.
 * - `DestinationInvokeError`: `InvokeFunction` of a function destination failed.
 * - `DestinationSdkMissing`: `@alicloud/fc20230330` is not installed or exports no `Client`.
 * - `DestinationInvalid`: not a destination, or a record JSON cannot hold; never retried.
 *
 * @example
 * ```ts
 * function alertFor(code: DestinationErrorCode): boolean {
 *   switch (code) {
 *     case 'DestinationHttpError':
 *     case 'DestinationInvokeError':
 *       return true;
 *     case 'DestinationNetworkError':
 *     case 'DestinationTimeout':
 *     case 'DestinationAborted':
 *     case 'DestinationSdkMissing':
 *     case 'DestinationInvalid':
 *       return false;
 *   }
 * }
 * ```
 */
export type DestinationErrorCode =
  | 'DestinationHttpError'
  | 'DestinationNetworkError'
  | 'DestinationTimeout'
  | 'DestinationAborted'
  | 'DestinationInvokeError'
  | 'DestinationSdkMissing'
  | 'DestinationInvalid';

/**
 * Every `code` an {@link FcAsyncError} that fc-async makes (core, the adapters, the backends,
 * `fc-async dev`) carries; the HTTP status it answers is `statusCode`. An app's own
 * `new FcAsyncError('MyCode', ...)` carries its own code (`FcAsyncError<'MyCode'>`).
 *
 * - Requests and arguments: `InvalidArgument` (400), `InvalidEvent` and `InvalidBody` (400, a
 *   malformed FC event), `InvalidConfig`, `RequestHeaderFieldsTooLarge` (431), `URITooLong` (414),
 *   `BodyAlreadyRead`, `RequestAborted`, `RequestTimeout` (408: a body that stopped arriving),
 *   `ConnectionClosed`.
 * - Tasks: `AsyncTaskNotFound` (404), `AsyncTaskAlreadyFinished` (400), `AsyncTaskAlreadyExists`
 *   (409), `ResourceThrottled` (429), `ServiceUnavailable` (503), `NotAvailableInPlatformMode`,
 *   `ConcurrentUpdate`.
 * - The reason of an invocation's aborted `signal`: `Stopped` (a stop), `InvocationError` (its
 *   `timeoutSeconds` passed), `ShuttingDown` (a shutdown past its deadline); and
 *   `UnhandledInvocationError`, `FunctionTimeout` (504).
 * - Backends: `BackendMissing`, `BackendNotReady`, `BackendUnavailable`, `RedisUnavailable`,
 *   `SqliteStoreLocked`, `SqliteStoreUnavailable`, `SqliteStoreVersion`, `SqliteWriteFailed` (503
 *   where a later try may succeed), `SqliteTaskUnreadable` (500: a task's record damaged on disk).
 * - Adapters: `AdapterMissing`, `NotAnExpressApp`, `MiddlewareSharedAcrossApps`,
 *   `FastifyAlreadyReady`, `FcAsyncAlreadyRegistered`, `FcAsyncNotOnRoot`, `ListenFailed`.
 * - `fc-async dev`: `NothingToServe`, `EntryNotFound`, `EntryLoadFailed`, `EntryNotServable`,
 *   `FunctionNotStarted`, `CustomRuntimeStartFailed`, `InitializerFailed` (a Node.js function's
 *   initializer threw, called back an error or ran past its timeout), `CAExited`, `CAConnectionFailed`,
 *   `CAResponseTooLarge` and `ResponseTooLarge` (502: a custom runtime's or an in-process app's answer
 *   past FC's 32 MB), `AccessKeyRequired`, `OutDirNotWritable`, `EntityTooLarge` (a body over
 *   FC's limit), `BodyBudgetExceeded` (503: the emulator holds too many body bytes).
 * - Destinations: every {@link DestinationErrorCode}.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * try {
 *   await handler.tasks.stop('t1');
 * } catch (e) {
 *   if (!isFcAsyncError(e)) throw e;
 *   const code: FcAsyncErrorCode = e.code; // a typo such as 'AsyncTaskNotFund' does not compile
 *   if (code === 'AsyncTaskNotFound') console.log('no such task');
 * }
 * ```
 */
export type FcAsyncErrorCode =
  | 'InvalidArgument'
  | 'InvalidEvent'
  | 'InvalidBody'
  | 'InvalidConfig'
  | 'RequestHeaderFieldsTooLarge'
  | 'URITooLong'
  | 'BodyAlreadyRead'
  | 'RequestAborted'
  | 'RequestTimeout'
  | 'ConnectionClosed'
  | 'AsyncTaskNotFound'
  | 'AsyncTaskAlreadyFinished'
  | 'AsyncTaskAlreadyExists'
  | 'ResourceThrottled'
  | 'ServiceUnavailable'
  | 'NotAvailableInPlatformMode'
  | 'ConcurrentUpdate'
  | 'Stopped'
  | 'InvocationError'
  | 'ShuttingDown'
  | 'UnhandledInvocationError'
  | 'FunctionTimeout'
  | 'BackendMissing'
  | 'BackendNotReady'
  | 'BackendUnavailable'
  | 'RedisUnavailable'
  | 'SqliteStoreLocked'
  | 'SqliteStoreUnavailable'
  | 'SqliteStoreVersion'
  | 'SqliteWriteFailed'
  | 'SqliteTaskUnreadable'
  | 'AdapterMissing'
  | 'NotAnExpressApp'
  | 'MiddlewareSharedAcrossApps'
  | 'FastifyAlreadyReady'
  | 'FcAsyncAlreadyRegistered'
  | 'FcAsyncNotOnRoot'
  | 'ListenFailed'
  | 'NothingToServe'
  | 'EntryNotFound'
  | 'EntryLoadFailed'
  | 'EntryNotServable'
  | 'FunctionNotStarted'
  | 'CustomRuntimeStartFailed'
  | 'InitializerFailed'
  | 'CAExited'
  | 'CAConnectionFailed'
  | 'CAResponseTooLarge'
  | 'ResponseTooLarge'
  | 'AccessKeyRequired'
  | 'OutDirNotWritable'
  | 'EntityTooLarge'
  | 'BodyBudgetExceeded'
  | DestinationErrorCode;

/**
 * One error class for everything fc-async reports: a stable `code`, the HTTP status it maps to,
 * the `cause` kept for logs, and a `toJSON()` that is safe to send to a caller (no stack, no
 * cause).
 *
 * @example
 * ```ts
 * throw new FcAsyncError('InvalidArgument', 'x-fc-async-delay must be 1..3599', { statusCode: 400 });
 * throw new FcAsyncError('ResourceThrottled', 'Too many tasks waiting', { statusCode: 429, retryAfterSeconds: 1 });
 * ```
 */
export class FcAsyncError<Code extends string = FcAsyncErrorCode> extends Error {
  override readonly name = 'FcAsyncError';
  /**
   * Stable: one of {@link FcAsyncErrorCode} for the errors fc-async makes. An app may make its
   * own with codes of its own (`new FcAsyncError('TranscodeFailed', ...)` is an
   * `FcAsyncError<'TranscodeFailed'>`).
   */
  readonly code: Code;
  readonly statusCode: number;
  /** Extra response headers, e.g. `Retry-After` on a 429. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    code: Code,
    message: string,
    options: {
      statusCode?: number;
      cause?: unknown;
      headers?: Record<string, string>;
      /** Sent as `Retry-After` (whole seconds): a later try may well succeed (a 429, a 503 of a store coming back). */
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = options.statusCode ?? 500;
    this.headers =
      options.retryAfterSeconds === undefined
        ? options.headers
        : { ...options.headers, 'retry-after': String(options.retryAfterSeconds) };
  }

  /** The body a caller sees: `{ code, message }`. */
  toJSON(): { code: Code; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * True when `value` is an {@link FcAsyncError}, also across package copies. Never throws: what an
 * app throws may be a revoked `Proxy` or an error whose `name` getter throws, and is then no
 * fc-async error. Its `code` is typed as one of fc-async's ({@link FcAsyncErrorCode}); an app that
 * makes errors with codes of its own names them too: `isFcAsyncError<FcAsyncErrorCode | MyCode>(e)`.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * try { await handler.tasks.stop('t1'); } catch (e) { if (isFcAsyncError(e)) console.log(e.code); }
 * ```
 */
export function isFcAsyncError<Code extends string = FcAsyncErrorCode>(value: unknown): value is FcAsyncError<Code> {
  try {
    return (
      value instanceof FcAsyncError ||
      (value instanceof Error && value.name === 'FcAsyncError' && typeof (value as FcAsyncError).code === 'string')
    );
  } catch {
    return false;
  }
}

/**
 * `value instanceof Error` that never throws (it does for a revoked `Proxy`, whose prototype
 * cannot be read): such a value is no `Error`.
 */
export function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

/**
 * A 400 with a stable code.
 *
 * @example
 * ```ts
 * throw badRequest('InvalidArgument', 'x-fc-async-delay must be a whole number of seconds'); // statusCode 400
 * ```
 */
export function badRequest(code: FcAsyncErrorCode, message: string, cause?: unknown): FcAsyncError {
  return new FcAsyncError(code, message, { statusCode: 400, cause });
}

/**
 * The 400 `InvalidArgument` FC's HTTP trigger answers for an async call whose body is past the
 * async limit in force, `limit` bytes; `size` says how large the body is, as far as it is known
 * (`'200000 bytes'`, `'131073 bytes or more'`, `'over 33554432 bytes'`). One wording for the
 * engine, the custom runtime's body reader and the emulator (whose FC API names the same refusal
 * `EntityTooLarge`).
 *
 * @example
 * ```ts
 * import { asyncBodyTooLarge } from '@fc-async/core';
 *
 * asyncBodyTooLarge('200000 bytes', 131072).message;
 * // 'The async request body is 200000 bytes, above the limit of 131072'
 * ```
 */
export function asyncBodyTooLarge(size: string, limit: number): FcAsyncError {
  return badRequest('InvalidArgument', `The async request body is ${size}, above the limit of ${limit}`);
}
