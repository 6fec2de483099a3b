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

/**
 * What stopped the start, with its cause when it has one: `Redis did not answer within 10000 ms`
 * alone names neither the address nor why (the cause's `connect ECONNREFUSED 127.0.0.1:6379` does).
 */
export function failure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A module that failed to load: the message already tells its cause, in the user's terms (a file, not the URL loaded).
  if ((error as { code?: unknown }).code === 'EntryLoadFailed') return error.message;
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  // One line: a cause of several (a compiler's) is already told in the message, in its own words.
  return cause && !cause.includes('\n') && !error.message.includes(cause)
    ? `${error.message} (${cause})`
    : error.message;
}
