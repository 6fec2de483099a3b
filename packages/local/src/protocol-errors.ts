import { type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { endLingering } from './linger.js';

/** The JSON body of an error answered before there is a request: `{ code, message }` or FC's API shape. */
export type ErrorBody = (code: string, message: string) => { body: object; headers?: Record<string, string> };

/** Node's parser error, with llhttp's `reason` ("Invalid character in Content-Length"). */
type ParserError = Error & { code?: string; reason?: string };

function describe(error: ParserError): [number, string, string] {
  const reason = typeof error.reason === 'string' && error.reason ? error.reason : 'malformed request';
  const message = `The request is not valid HTTP/1.1: ${reason}`;
  if (error.code === 'HPE_HEADER_OVERFLOW') return [431, 'RequestHeaderFieldsTooLarge', message];
  if (error.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return [413, 'EntityTooLarge', message];
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return [408, 'RequestTimeout', 'The request did not arrive in time'];
  }
  return [400, 'InvalidArgument', message];
}

function answer(socket: Duplex, status: number, error: ReturnType<ErrorBody>): void {
  const text = JSON.stringify(error.body);
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(text)}`,
    ...Object.entries(error.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${text}`);
}

type InFlight = (ServerResponse & { req?: { complete?: boolean } }) | null | undefined;

/**
 * Runs `refuse` once the answers of the requests pipelined before a malformed one, read whole,
 * have gone (an accepted task's 202 among them): else the client would read the refusal as one of
 * their answers. Node hands the socket to the next of them as each finishes, so each is waited
 * for in turn. One whose own body is malformed (a bad chunk) is refused now; if its answer had
 * begun, the connection is dropped.
 */
function afterAnswersInFlight(socket: Duplex, refuse: () => void): void {
  const inFlight = (socket as Duplex & { _httpMessage?: InFlight })._httpMessage;
  if (inFlight?.headersSent && !inFlight.req?.complete) {
    // A refusal written whole, waiting for the rest of the body (endAfterBody): sent, then closed.
    if (!endLingering(inFlight)) socket.destroy();
    return;
  }
  if (inFlight?.req?.complete && !inFlight.writableFinished) {
    // The next answer is given the socket after this one's finish listeners ran.
    inFlight.once('finish', () => setImmediate(afterAnswersInFlight, socket, refuse));
    inFlight.once('close', () => {
      if (!inFlight.writableFinished) socket.destroy();
    });
    return;
  }
  refuse();
}

/**
 * Answers what Node refuses before a request exists (a malformed request line or header, an
 * invalid `Content-Length`, a bad chunk, headers over the limit, an unknown `Expect`) with a JSON
 * error instead of Node's bare status line, and `CONNECT` with 405 instead of a dropped
 * connection. (Node's bare 400 for an HTTP/1.1 request without `Host` is turned off where each
 * server is created, with `requireHostHeader: false`, and answered by its handler.)
 */
export function answerProtocolErrors(server: Server, errorBody: ErrorBody): void {
  server.on('clientError', (error: ParserError, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message] = describe(error);
    const refuse = () => {
      if (socket.writable) answer(socket, status, errorBody(code, message));
      else socket.destroy();
    };
    afterAnswersInFlight(socket, refuse);
  });
  server.on('connect', (_req, socket: Duplex) => {
    socket.on('error', () => {});
    answer(socket, 405, errorBody('MethodNotAllowed', 'CONNECT is not supported'));
  });
  // Node answers an `Expect` other than 100-continue with a bare 417 unless this is listened to.
  server.on('checkExpectation', (req, res) => {
    const expect = String(req.headers.expect).slice(0, 64);
    const error = errorBody('ExpectationFailed', `Expect: ${expect} is not supported; only 100-continue is`);
    const text = JSON.stringify(error.body);
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close', ...error.headers });
    res.end(text);
  });
}
