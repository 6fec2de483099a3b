import type { Server } from 'node:http';

/**
 * Makes `server` answer a client that half-closes after its request (`nc -N`, an HTTP/1.0
 * client that shuts its socket down for writing): by default Node ends its own side of
 * the socket as soon as the client's side ends, so an answer not written by then (any invocation
 * that takes a moment: a custom runtime's round trip, a slow handler) is lost. With Node's switch
 * for this (on `http.Server` since Node 0.x, not in its docs), the socket ends once the answer
 * under way is written. A client that closes both ways looks the same to the server (a FIN): its
 * request, too, runs to its end and its answer goes nowhere; the emulator never cut a sync call
 * for a client that left, and streams that never end (the dashboard's) end on the FIN themselves.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * const server = createServer((req, res) => setTimeout(() => res.end('late'), 100));
 * answerHalfClosed(server); // `printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | nc -N 127.0.0.1 <port>` gets "late"
 * ```
 */
export function answerHalfClosed(server: Server): void {
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
}
