import { maskUrl } from '../logger.js';
import { describe, stringOption } from './validate.js';

/**
 * A target function, as {@link parseFunctionTarget} reads it.
 *
 * @example
 * ```ts
 * const target: FunctionTarget = parseFunctionTarget('acs:fc:cn-hangzhou:123:functions/dest-fail');
 * target.functionName; // 'dest-fail'
 * ```
 */
export interface FunctionTarget {
  functionName: string;
  qualifier?: string;
  region?: string;
  accountId?: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const QUALIFIER = /^[A-Za-z0-9_$-]{1,128}$/;
const ARN = /^acs:fc:([a-z0-9-]+):(\d+):functions\/([^/]+)(?:\/([^/]+))?$/;

/**
 * Reads a destination target: a function name, `name:qualifier`, or an FC 3.0 ARN
 * `acs:fc:{region}:{accountId}:functions/{name}`, optionally followed by `/{qualifier}`.
 * Throws a `TypeError` for anything else, including FC 2.0 `services/...` ARNs.
 *
 * @example
 * ```ts
 * parseFunctionTarget('acs:fc:cn-hangzhou:123:functions/dest-fail/prod');
 * // { functionName: 'dest-fail', qualifier: 'prod', region: 'cn-hangzhou', accountId: '123' }
 * ```
 */
export function parseFunctionTarget(target: string): FunctionTarget {
  stringOption('target', target);
  let result: FunctionTarget;
  if (target.startsWith('acs:')) {
    const m = ARN.exec(target);
    if (!m) {
      const hint = target.includes(':services/') ? ' (FC 2.0 service ARNs are not supported by the FC 3.0 API)' : '';
      throw new TypeError(
        `Expected \`target\` to be an ARN \`acs:fc:{region}:{accountId}:functions/{name}[/{qualifier}]\`${hint}, got \`${describe(target)}\``,
      );
    }
    result = { functionName: m[3]!, region: m[1]!, accountId: m[2]! };
    if (m[4] !== undefined) result.qualifier = m[4];
  } else {
    // A webhook's URL given here: read as `name:qualifier` its password and token would be quoted.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
      throw new TypeError(
        `Expected \`target\` to be a function name or an FC ARN, got the URL \`${describe(maskUrl(target))}\` (a webhook takes httpDestination)`,
      );
    }
    const colon = target.indexOf(':');
    result = { functionName: colon < 0 ? target : target.slice(0, colon) };
    if (colon >= 0) result.qualifier = target.slice(colon + 1);
  }
  if (!NAME.test(result.functionName)) {
    throw new TypeError(
      `Expected the function name of \`target\` to be 1-64 letters, digits, \`_\` or \`-\`, not starting with a digit or \`-\`, got \`${describe(result.functionName)}\``,
    );
  }
  if (result.qualifier !== undefined && !QUALIFIER.test(result.qualifier)) {
    throw new TypeError(
      `Expected the qualifier of \`target\` to be a version or alias name, got \`${describe(result.qualifier)}\``,
    );
  }
  return result;
}
