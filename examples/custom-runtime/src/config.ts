/**
 * The function's async configuration, in one place: s.yaml's `asyncInvokeConfig` says the same
 * (a test keeps them equal). fc-async needs `maxAsyncRetryAttempts` to know which attempt is the
 * last, since a function cannot read its own FC configuration.
 */
export const ASYNC_CONFIG = {
  maxAsyncRetryAttempts: 2,
  maxAsyncEventAgeInSeconds: 3600,
} as const;

/** Budget of `GET /pre-stop`, ms: below the PreStop timeout in s.yaml (15 s). */
export const PRE_STOP_TIMEOUT_MS = 10_000;
