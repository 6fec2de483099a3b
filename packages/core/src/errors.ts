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
export class FcAsyncError extends Error {
  override readonly name = 'FcAsyncError';
  readonly code: string;
  readonly statusCode: number;
  /** Extra response headers, e.g. `Retry-After` on a 429. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    code: string,
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
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * True when `value` is an {@link FcAsyncError}, also across package copies. Never throws: what an
 * app throws may be a revoked `Proxy` or an error whose `name` getter throws, and is then no
 * fc-async error.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * try { await handler.tasks.stop('t1'); } catch (e) { if (isFcAsyncError(e)) console.log(e.code); }
 * ```
 */
export function isFcAsyncError(value: unknown): value is FcAsyncError {
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
export function badRequest(code: string, message: string, cause?: unknown): FcAsyncError {
  return new FcAsyncError(code, message, { statusCode: 400, cause });
}
