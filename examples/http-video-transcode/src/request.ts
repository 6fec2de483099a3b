import { FcAsyncError } from '@fc-async/core';
import type { TranscodeErrorCode } from './errors.js';
import { type DstFormat, FORMATS, parseFormat } from './formats.js';
import { checkBucket, checkKey } from './storage.js';

/**
 * The body of `POST /`, as in FC's http-video-transcode best practice.
 *
 * @example
 * ```ts
 * const job: TranscodeRequest = { bucket: 'videos', object: 'in/cat.mov', output_dir: 'out', dst_format: 'mp4' };
 * ```
 */
export interface TranscodeRequest {
  bucket: string;
  object: string;
  output_dir: string;
  dst_format: DstFormat;
}

/**
 * Validates a request body. Throws a 400 `InvalidArgument` naming the first bad field.
 *
 * @example
 * ```ts
 * parseTranscodeRequest({ bucket: 'videos', object: 'in/cat.mov', output_dir: 'out/', dst_format: 'MP4' });
 * // { bucket: 'videos', object: 'in/cat.mov', output_dir: 'out', dst_format: 'mp4' }
 * ```
 */
export function parseTranscodeRequest(body: unknown): TranscodeRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('The body must be a JSON object: { "bucket", "object", "output_dir", "dst_format" }');
  }
  const b = body as Record<string, unknown>;
  const dst = parseFormat(b.dst_format);
  if (!dst) throw invalid(`\`dst_format\` must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(b.dst_format)}`);
  const outputDir = typeof b.output_dir === 'string' ? b.output_dir.replace(/\/+$/, '') : b.output_dir;
  return {
    bucket: checkBucket(b.bucket),
    object: checkKey(b.object, 'object'),
    output_dir: checkKey(outputDir, 'output_dir'),
    dst_format: dst,
  };
}

function invalid(message: string): FcAsyncError<TranscodeErrorCode> {
  return new FcAsyncError('InvalidArgument', message, { statusCode: 400 });
}
