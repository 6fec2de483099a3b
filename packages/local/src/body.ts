import type { IncomingMessage } from 'node:http';
import { FcAsyncError } from '@fc-async/core';

const EMPTY = Buffer.alloc(0);

/** FC's limit for a synchronous request body. */
export const MAX_SYNC_BODY = 32 * 1024 * 1024;

/**
 * Reads a request body, refusing more than `limit` bytes with a 400 (`EntityTooLarge` by
 * default) as soon as the limit is passed, and a client that drops the connection mid-body with
 * a 400 `RequestAborted`.
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
    // A client that goes away mid-body is not a fault of the server: a 4xx, which callers do not log as an error.
    req.on('error', (error) =>
      reject(
        req.destroyed && !req.complete
          ? new FcAsyncError('RequestAborted', 'The client closed the connection before the whole body arrived', {
              statusCode: 400,
              cause: error,
            })
          : error,
      ),
    );
  });
}
