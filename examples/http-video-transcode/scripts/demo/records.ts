import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DestinationRecord } from '@fc-async/core';
import { parseDestinationRecord, recordsDir } from '../../functions/destination.js';
import { poll } from './poll.js';

/**
 * The records a destination function kept in `<dir>/<name>.jsonl`.
 *
 * @example
 * ```ts
 * const kept: KeptRecords = { file: '/tmp/http-video-transcode/destinations/dest-fail.jsonl', records: [] };
 * ```
 */
export interface KeptRecords {
  file: string;
  records: DestinationRecord[];
}

/**
 * The records the destination function `name` kept for the given request ids (all of them
 * when `requestIds` is absent), in the order it received them.
 *
 * @example
 * ```ts
 * const { records } = await keptRecords('dest-fail', ['1-6b0b36d7-97953c4f7c029743bf067309']);
 * records[0]?.requestContext.condition; // 'UnhandledInvocationError'
 * ```
 */
export async function keptRecords(
  name: string,
  requestIds?: readonly string[],
  dir: string = recordsDir(),
): Promise<KeptRecords> {
  const file = join(dir, `${name}.jsonl`);
  const text = await readFile(file, 'utf8').catch(() => '');
  const records = text
    .split('\n')
    .filter(Boolean)
    .map((line) => parseDestinationRecord(line))
    .filter((r) => !requestIds || requestIds.includes(r.requestContext.requestId));
  return { file, records };
}

/**
 * {@link keptRecords}, polled until every request id has a record or `timeoutMs` passed: a
 * destination is invoked asynchronously once its task is final, so its record lands a little
 * later. Resolves what is there by then.
 *
 * @example
 * ```ts
 * const { records } = await waitForRecords('dest-succ', requestIds, { timeoutMs: 30_000 });
 * ```
 */
export async function waitForRecords(
  name: string,
  requestIds: readonly string[],
  options: { timeoutMs: number; dir?: string },
): Promise<KeptRecords> {
  const complete = async () => {
    const kept = await keptRecords(name, requestIds, options.dir);
    const seen = new Set(kept.records.map((r) => r.requestContext.requestId));
    return requestIds.every((id) => seen.has(id)) && kept;
  };
  return (await poll(complete, { timeoutMs: options.timeoutMs })) ?? keptRecords(name, requestIds, options.dir);
}
