import type { IncomingMessage } from 'node:http';
import { FcAsyncError } from '@fc-async/core';

const EMPTY = Buffer.alloc(0);

/** FC's limit for a synchronous request body. */
export const MAX_SYNC_BODY = 32 * 1024 * 1024;

/**
 * Reads a request body, refusing more than `limit` bytes with a 400 (`EntityTooLarge` by
 * default) as soon as the limit is passed.
 */
export function readBody(req: IncomingMessage, limit: number, code = 'EntityTooLarge'): Promise<Buffer> {
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(EMPTY);
  }
  const tooLarge = () => new FcAsyncError(code, `The request body is larger than ${limit} bytes`, { statusCode: 400 });
  if (length !== undefined && Number(length) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
