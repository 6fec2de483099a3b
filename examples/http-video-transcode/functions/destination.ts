import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createConsoleLogger,
  type DestinationRecord,
  FcAsyncError,
  jsonlDestination,
  type Logger,
} from '@fc-async/core';

/** Options of {@link createDestinationHandler}. */
export interface DestinationHandlerOptions {
  /** Folder of `<name>.jsonl`. @default DEST_RECORDS_DIR, else `<os tmpdir>/http-video-transcode/destinations` */
  dir?: string | undefined;
  /** @default a JSON-lines console logger (on FC, stdout reaches the function's log store) */
  logger?: Logger | undefined;
}

/**
 * Where destination functions keep records: `DEST_RECORDS_DIR`, else
 * `<os tmpdir>/http-video-transcode/destinations` (on FC only /tmp is writable; there the log
 * line is the durable copy).
 *
 * @example
 * ```ts
 * recordsDir({ DEST_RECORDS_DIR: '/data/records' }); // '/data/records'
 * ```
 */
export function recordsDir(env: Record<string, string | undefined> = process.env): string {
  return env.DEST_RECORDS_DIR || join(tmpdir(), 'http-video-transcode', 'destinations');
}

/**
 * What a destination function returns.
 *
 * @example
 * ```ts
 * const kept: KeptRecord = { file: '/tmp/http-video-transcode/destinations/dest-fail.jsonl', requestId: '1-…', condition: 'UnhandledInvocationError' };
 * ```
 */
export interface KeptRecord {
  file: string;
  requestId: string;
  condition: string;
}

/**
 * An FC 3.0 event handler `handler(event, context)` for a destination function: parses the
 * destination record FC sends (a Buffer or string holding JSON, or an object), logs one line
 * about it and appends the whole record to `<dir>/<name>.jsonl`. A malformed event throws a 400
 * `InvalidRecord`.
 *
 * @example
 * ```ts
 * export const handler = createDestinationHandler('dest-fail');
 * ```
 */
export function createDestinationHandler(
  name: string,
  options: DestinationHandlerOptions = {},
): (event: unknown, context?: unknown) => Promise<KeptRecord> {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new TypeError(`Expected \`name\` to be a function name, got \`${String(name)}\``);
  }
  const logger = options.logger ?? createConsoleLogger();
  const file = join(options.dir ?? recordsDir(), `${name}.jsonl`);
  const append = jsonlDestination(file);
  return async function destinationHandler(event: unknown): Promise<KeptRecord> {
    const record = parseDestinationRecord(event);
    const { requestId, condition, approximateInvokeCount } = record.requestContext;
    logger.info('destination record', {
      destination: name,
      requestId,
      condition,
      approximateInvokeCount,
      statusCode: record.responseContext?.statusCode,
    });
    await append(record);
    return { file, requestId, condition };
  };
}

/**
 * The destination record in an event: a Buffer or string of JSON, or the parsed object.
 * Throws a 400 `InvalidRecord` when it is not one.
 *
 * @example
 * ```ts
 * parseDestinationRecord(Buffer.from(JSON.stringify(record))).requestContext.condition;
 * ```
 */
export function parseDestinationRecord(event: unknown): DestinationRecord {
  let value: unknown = event;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (error) {
      throw new FcAsyncError('InvalidRecord', 'The event is not JSON', { statusCode: 400, cause: error });
    }
  }
  const context = (value as { requestContext?: Record<string, unknown> } | null)?.requestContext;
  if (typeof context?.requestId !== 'string' || typeof context.condition !== 'string') {
    throw new FcAsyncError(
      'InvalidRecord',
      'The event is not a destination record: requestContext.requestId and requestContext.condition are missing',
      { statusCode: 400 },
    );
  }
  return value as DestinationRecord;
}
