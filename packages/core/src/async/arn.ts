import type { Invocation } from '../invocation.js';

/** The region and account {@link functionArn} writes when FC gave none (a run without FC in front). */
export const NO_REGION = 'local';
export const NO_ACCOUNT = '0';

/**
 * `acs:fc:{region}:{accountId}:functions/{name}`.
 *
 * @example
 * ```ts
 * functionArn({ region: 'cn-hangzhou', accountId: '123', functionName: 'transcode' }, 'fallback');
 * // 'acs:fc:cn-hangzhou:123:functions/transcode'
 * ```
 */
export function functionArn(
  invocation: Pick<Invocation, 'region' | 'accountId' | 'functionName'>,
  fallbackName: string,
): string {
  return `acs:fc:${invocation.region || NO_REGION}:${invocation.accountId || NO_ACCOUNT}:functions/${invocation.functionName || fallbackName}`;
}

/**
 * {@link functionArn}, remembering the last function's: one function, one ARN, so that an
 * invocation costs no new string.
 *
 * @example
 * ```ts
 * declare const invocation: Invocation;
 * const arnOf = lastFunctionArn();
 * arnOf(invocation, 'fc-async-local') === arnOf(invocation, 'fc-async-local'); // the same string
 * ```
 */
export function lastFunctionArn(): (
  invocation: Pick<Invocation, 'region' | 'accountId' | 'functionName'>,
  fallbackName: string,
) => string {
  let last: { region: string; accountId: string; functionName: string; fallbackName: string; arn: string } | undefined;
  return (invocation, fallbackName) => {
    if (
      last !== undefined &&
      last.region === invocation.region &&
      last.accountId === invocation.accountId &&
      last.functionName === invocation.functionName &&
      last.fallbackName === fallbackName
    ) {
      return last.arn;
    }
    const { region, accountId, functionName } = invocation;
    last = { region, accountId, functionName, fallbackName, arn: functionArn(invocation, fallbackName) };
    return last.arn;
  };
}
