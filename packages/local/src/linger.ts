import type { ServerResponse } from 'node:http';

/** How long the rest of a refused request's body is read, and dropped, at most. */
export const LINGER_MS = 5000;
/** How long a client that stopped sending the body of a refused request is waited for. */
export const LINGER_IDLE_MS = 500;

/** The answers written whole that wait for their request's body to end, each with its end. */
const lingering = new WeakMap<ServerResponse, () => void>();

/**
 * Ends `res` with `chunk`, an answer that carries its `Content-Length`. When it answers a request
 * whose body has not all arrived (a refusal before the body was read: too large, over the body
 * budget), the rest of that body is read and dropped until it ends, the client goes away, stops
 * sending for {@link LINGER_IDLE_MS} (a client told no `100 Continue` sends nothing) or
 * {@link LINGER_MS} pass; then the answer ends and its connection closes. A connection closed
 * with bytes unread is reset, and a client still sending its body (fetch, Node's `http`, a
 * browser's upload: none waits for `100 Continue`) then fails with `EPIPE` or `ECONNRESET`
 * instead of reading the answer it was sent (the lingering close of nginx).
 *
 * @example
 * ```ts
 * res.writeHead(400, { 'content-length': String(Buffer.byteLength(text)), connection: 'close' });
 * endAfterBody(res, text); // the client reads the 400 whole at once; the socket closes after its upload
 * ```
 */
export function endAfterBody(res: ServerResponse, chunk: string | Buffer): void {
  const req = res.req;
  if (req.complete || req.destroyed) {
    res.end(chunk);
    return;
  }
  res.write(chunk);
  // Out now, as res.end() would send it (an answer to HEAD ignores the write and its head waits).
  res.flushHeaders();
  const end = () => {
    lingering.delete(res);
    clearTimeout(total);
    clearTimeout(idle);
    req.off('data', sending).off('end', end).off('close', end);
    res.end();
  };
  const sending = () => idle.refresh();
  const total = setTimeout(end, LINGER_MS).unref();
  const idle = setTimeout(end, LINGER_IDLE_MS).unref();
  lingering.set(res, end);
  req.on('data', sending).once('end', end).once('close', end);
}

/**
 * Ends now an answer {@link endAfterBody} holds open, when its request's body turned out
 * malformed (the parser gave up on it), so that what it wrote is sent before the connection
 * closes. False for any other answer.
 *
 * @example
 * ```ts
 * if (!endLingering(res)) socket.destroy(); // an answer under way that is not a refusal: dropped
 * ```
 */
export function endLingering(res: ServerResponse): boolean {
  const end = lingering.get(res);
  end?.();
  return end !== undefined;
}
