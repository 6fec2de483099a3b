import { FcAsyncError } from '@fc-async/core';

/** A plain object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A malformed `s.yaml`: the message names the file and the problem. */
export function configError(file: string, problem: string): FcAsyncError {
  return new FcAsyncError('InvalidConfig', `${file}: ${problem}`, { statusCode: 400 });
}

/** A bad command-line flag or option: a `TypeError` with the p-queue style message. */
export function optionError(name: string, expected: string, got: unknown): TypeError {
  return new TypeError(`Expected \`${name}\` to be ${expected}, got \`${String(got)}\``);
}
