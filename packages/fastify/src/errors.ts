import type { IncomingMessage, ServerResponse } from 'node:http';
import { getInvocation, type Logger, logAppError } from '@fc-async/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

const GENERIC_500 = JSON.stringify({ code: 'InternalError', message: 'Internal Server Error' });

/**
 * An error handler in place of Fastify's default one: 4xx errors keep Fastify's answer (their
 * status and code); any other is logged and answered a generic 500, without its message.
 */
export function genericErrorHandler(logger: () => Logger) {
  return function fcAsyncErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    if (reply.raw.headersSent) {
      // The head went out (a route wrote or flushed it, then threw): no answer can follow. Sending
      // one threw ERR_HTTP_HEADERS_SENT, and Fastify destroyed the response with that error, which
      // the invocation then failed with in place of the app's (logged twice). Destroyed with the
      // app's error here, as Express's final handler does: logged once, and the record says it.
      logAppError(logger(), 'fastify', error, getInvocation(request.raw));
      reply.raw.destroy(error);
      return;
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      reply.code(status).send(error);
      return;
    }
    logAppError(logger(), 'fastify', error, getInvocation(request.raw));
    // As text, so that a route's response schema for 5xx does not reshape it (to `{}`).
    reply.code(500).type('application/json; charset=utf-8').send(GENERIC_500);
  };
}

/** What a held 5xx may buffer: Fastify's error answers are small; a larger body goes out as written. */
const HELD_BODY_LIMIT = 16 * 1024;

/**
 * Turns the 5xx answer of Fastify's default error handler (which sends the error's message) into
 * the generic 500, and logs what it hid: `error` when the caller has it (with its stack), else the
 * message. Any other answer, an app's own error answer included, goes out as written. The head of
 * a 5xx and its first chunks are held until its body is known (Fastify 5 ends with the body,
 * Fastify 4 writes it, then ends), so that its content-length is the new one. Once `seen` has the
 * error (an onError hook saw it), the default answer is known by who sent it, whatever its shape
 * (a route's response schema for the status reshapes it: `{ message }` alone keeps the message),
 * and an app's own answer of the default's shape goes out as written; without it, by its shape.
 */
export function hideDefaultErrors(
  req: IncomingMessage,
  res: ServerResponse,
  logger: Logger,
  seen?: () => SeenError | undefined,
): void {
  const { writeHead, write, end } = res;
  let held: unknown[] | undefined;
  let chunks: Buffer[] = [];
  let size = 0;
  let through = false;
  const flush = (self: ServerResponse) => {
    const args = held;
    const body = chunks;
    held = undefined;
    chunks = [];
    through = true;
    if (args) writeHead.apply(self, args as Parameters<typeof writeHead>);
    for (const chunk of body) (write as (chunk: Buffer) => boolean).call(self, chunk);
  };
  res.writeHead = function holdErrorHead(this: ServerResponse, ...args: unknown[]) {
    if (!through && Number(args[0]) >= 500) {
      held = args;
      return this;
    }
    return writeHead.apply(this, args as Parameters<typeof writeHead>);
  } as typeof res.writeHead;
  res.write = function writeAfterHead(this: ServerResponse, ...args: unknown[]) {
    const chunk = args[0];
    if (held && args.length === 1 && (typeof chunk === 'string' || Buffer.isBuffer(chunk))) {
      const bytes = Buffer.from(chunk);
      if (size + bytes.length <= HELD_BODY_LIMIT) {
        chunks.push(bytes);
        size += bytes.length;
        return true;
      }
    }
    flush(this);
    return write.apply(this, args as Parameters<typeof write>);
  } as typeof res.write;
  res.end = function endWithoutMessage(this: ServerResponse, ...args: unknown[]) {
    if (held) {
      const last = args[0];
      const tail = typeof last === 'string' || Buffer.isBuffer(last) ? [Buffer.from(last)] : [];
      // What the onError hook saw says who answers; without it (a route it does not reach), the shape.
      const error = seen?.();
      const message = error ? undefined : defaultErrorMessage(Buffer.concat([...chunks, ...tail]));
      if (error ? error.answeredByDefault() : message !== undefined) {
        logAppError(logger, 'fastify', error?.error ?? message, getInvocation(req));
        held = genericHead(held, GENERIC_500.length);
        chunks = [];
        // The generic answer goes out as it is: a compression plugin's encoding was the hidden body's.
        this.removeHeader('content-encoding');
        const callback = args.find((a) => typeof a === 'function');
        flush(this);
        return (end as (...a: unknown[]) => ServerResponse).apply(
          this,
          callback ? [GENERIC_500, callback] : [GENERIC_500],
        );
      }
    }
    flush(this);
    return end.apply(this, args as Parameters<typeof end>);
  } as typeof res.end;
}

/**
 * `writeHead`'s arguments for the generic 500 in place of the hidden body: the headers object's
 * content-length set to `length`, and no content-encoding (@fastify/compress's gzip, which
 * described the hidden body: kept, a client would fail to decode the plain generic answer).
 */
function genericHead(args: unknown[], length: number): unknown[] {
  const at = args.findIndex((a, i) => i > 0 && typeof a === 'object' && a !== null && !Array.isArray(a));
  if (at < 0) return args;
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args[at] as Record<string, unknown>)) {
    const lower = name.toLowerCase();
    if (lower !== 'content-length' && lower !== 'content-encoding') headers[name] = value;
  }
  headers['content-length'] = String(length);
  return args.map((a, i) => (i === at ? headers : a));
}

/** The message of Fastify's default error answer (`{ statusCode, code?, error, message }`), if `body` is one. */
function defaultErrorMessage(body: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString());
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const o = parsed as Record<string, unknown>;
  const keys = Object.keys(o).every((k) => k === 'statusCode' || k === 'code' || k === 'error' || k === 'message');
  return keys && typeof o.statusCode === 'number' && typeof o.error === 'string' && typeof o.message === 'string'
    ? o.message
    : undefined;
}

/** An error an onError hook saw, and who answers it. */
export interface SeenError {
  error: unknown;
  /**
   * Whether the answer about to be written comes from Fastify's last resort: once an error handler
   * runs, `reply.send(error)` (Fastify's default handler, or an app's own handler passing the error
   * on) ends in Fastify's fallback, which serializes the error, message included, through the
   * route's response schema; any other `send` is an answer of the app's own.
   */
  answeredByDefault(): boolean;
}

/** Call from an onError hook (before any error handler runs): watches the reply's `send`. */
export function seeError(reply: FastifyReply, error: unknown): SeenError {
  const send = reply.send;
  let lastWasError = false;
  reply.send = function sendWatched(this: FastifyReply, payload?: unknown) {
    lastWasError = payload instanceof Error;
    return send.call(this, payload);
  } as typeof reply.send;
  return { error, answeredByDefault: () => lastWasError };
}
