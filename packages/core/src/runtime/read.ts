import type { IncomingMessage } from 'node:http';
import { asyncBodyTooLarge, badRequest, FcAsyncError } from '../errors.js';
import type { FcRequest } from '../request.js';

const EMPTY = Buffer.alloc(0);

/**
 * Reads a real Node request (a custom runtime's `IncomingMessage`) into an {@link FcRequest},
 * body included, refusing bodies above `limit` bytes with a 400 `InvalidArgument`, as FC's HTTP trigger does (the rest of
 * the body is then discarded so the connection stays usable). A body some middleware already
 * read fails with 500 `BodyAlreadyRead`: the fc-async middleware must come before body parsers.
 * A request whose client left before it was read (or while it was) fails with 400 `RequestAborted`.
 *
 * @param options.url - the URL to keep (Express: `req.originalUrl`); default `req.url`.
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http';
 * declare const req: IncomingMessage;
 * const request = await readNodeRequest(req, { limit: 128 * 1024 });
 * request.body.length; // bytes read
 * ```
 */
export async function readNodeRequest(
  req: IncomingMessage,
  options: { limit: number; url?: string | undefined },
): Promise<FcRequest> {
  checkReadOptions(options);
  const body = await readBody(req, options.limit);
  return {
    method: req.method ?? 'GET',
    url: options.url ?? req.url ?? '/',
    headers: { ...req.headers },
    body,
    remoteAddress: req.socket?.remoteAddress,
  };
}

/** A `limit` that is not a number would compare false with every size: no body would be refused. */
function checkReadOptions(options: { limit: unknown; url?: unknown }): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object with a \`limit\`, got \`${String(options)}\``);
  }
  if (typeof options.limit !== 'number' || !(options.limit >= 0)) {
    throw new TypeError(`Expected \`limit\` to be a number of bytes from 0 and up, got \`${String(options.limit)}\``);
  }
  if (options.url !== undefined && typeof options.url !== 'string') {
    throw new TypeError(`Expected \`url\` to be a string, got \`${typeof options.url}\``);
  }
}

function tooLarge(size: number, limit: number): FcAsyncError {
  return asyncBodyTooLarge(`${size} bytes or more`, limit);
}

function aborted(cause: unknown): FcAsyncError {
  return badRequest('RequestAborted', 'The request body could not be read', cause);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
  if (req.readableEnded) {
    if (!hasBody) return Promise.resolve(EMPTY);
    return Promise.reject(
      new FcAsyncError(
        'BodyAlreadyRead',
        'The request body was read before fc-async saw it: install it before body parsers',
      ),
    );
  }
  if (req.destroyed) {
    // The client left while earlier middleware ran: the body's events are over and will not come.
    return Promise.reject(aborted(new Error('The client closed the request before fc-async read its body')));
  }
  if (declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(declared, limit));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    function onData(chunk: Buffer | string) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) {
        cleanup();
        req.resume(); // discard the rest, keep the connection usable
        reject(tooLarge(size, limit));
        return;
      }
      chunks.push(bytes);
    }
    function onEnd() {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    }
    function onError(error: unknown) {
      cleanup();
      reject(aborted(error));
    }
    function onClose() {
      onError(new Error('The client closed the request before its body ended'));
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
