import { type Agent, type IncomingHttpHeaders, request } from 'node:http';
import { type BridgeResponse, FcAsyncError, getInvocation, type NodeHandler } from '@fc-async/core';
import { MAX_RESPONSE_BYTES, responseTooLarge } from './limits.js';
import { within } from './within.js';

/** Where a custom runtime listens, and whether it is still running. */
export interface ChildTarget {
  readonly name: string;
  readonly command: readonly string[];
  readonly port: number;
  readonly agent: Agent;
  /** How the process ended, once it has. */
  readonly exit: { code: number | null; signal: string | null } | undefined;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  /** The exchanges under way, for a stop that lets them finish first. */
  readonly pending: Set<Promise<unknown>>;
}

/** How long a failed exchange waits to learn whether the child exited (a crash mid-request), ms. */
const EXIT_GRACE_MS = 1000;
/** Why an exchange was cut: the child's answer passed {@link MAX_RESPONSE_BYTES} (FC's limit of a sync response). */
class AnswerTooLarge extends Error {}

/** The child closed the connection after its answer began (an app stream that failed mid-body). */
class AnswerCut extends Error {
  constructor(
    readonly statusCode: number,
    readonly received: number,
    cause: unknown,
  ) {
    super(`HTTP ${statusCode}, ${received} bytes of its body`, { cause });
  }
}

/** A whole answer of the child. */
export interface ChildAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Hop-by-hop headers (RFC 9110 section 7.6.1), and the length the sender recomputes. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
]);

/** One HTTP/1.1 exchange with the child on loopback over its keep-alive agent, the answer read whole. */
export function exchange(target: ChildTarget, init: Parameters<typeof send>[1]): Promise<ChildAnswer> {
  const answer = send(target, init);
  target.pending.add(answer);
  const settled = () => target.pending.delete(answer);
  answer.then(settled, settled);
  return answer;
}

/** Why an exchange was cut: the sync invocation's timeout passed. */
class SyncTimeout extends Error {}

function send(
  target: ChildTarget,
  init: {
    method: string;
    path: string;
    headers: IncomingHttpHeaders;
    body?: Buffer;
    signal?: AbortSignal;
    timeoutMs?: number;
  },
): Promise<ChildAnswer> {
  return new Promise((resolve, reject) => {
    const headers: IncomingHttpHeaders = {};
    for (const name in init.headers) if (!HOP_BY_HOP.has(name)) headers[name] = init.headers[name];
    const body = init.body ?? Buffer.alloc(0);
    if (body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(init.method)) {
      headers['content-length'] = String(body.length);
    }
    const signal = init.signal;
    // Why the emulator itself cut the exchange, if it did: that, not the cut it causes, is the error.
    let cutBy: Error | undefined;
    const cut = (error: Error) => {
      cutBy ??= error;
      outgoing.destroy(error);
    };
    const onAbort = () => cut(new Error('The invocation was aborted'));
    // As FC ends an invocation that overran its timeout: the request to the child is closed.
    const timer =
      init.timeoutMs === undefined
        ? undefined
        : setTimeout(() => cut(new SyncTimeout('The invocation timed out')), init.timeoutMs);
    // Removed once the exchange ends: a sync call's signal lives as long as the process.
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error) => {
      done();
      reject(error);
    };
    // The answer under way, once its head came: a connection lost then cut the answer, not the call.
    let begun: { statusCode: number; size: number } | undefined;
    const lost = (error: Error) => cutBy ?? (begun ? new AnswerCut(begun.statusCode, begun.size, error) : error);
    const outgoing = request(
      { host: '127.0.0.1', port: target.port, method: init.method, path: init.path, headers, agent: target.agent },
      (incoming) => {
        const chunks: Buffer[] = [];
        const answer = { statusCode: incoming.statusCode ?? 0, size: 0 };
        begun = answer;
        incoming.on('data', (chunk: Buffer) => {
          answer.size += chunk.length;
          if (answer.size > MAX_RESPONSE_BYTES) {
            cut(new AnswerTooLarge(`The answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        incoming.once('error', (error) => fail(lost(error)));
        incoming.once('end', () => {
          done();
          resolve({ statusCode: incoming.statusCode ?? 502, headers: incoming.headers, body: Buffer.concat(chunks) });
        });
      },
    );
    outgoing.once('error', (error) => fail(lost(error)));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    outgoing.end(body);
  });
}

/**
 * The request listener of a custom-runtime function: the invocation (FC's common headers, and on
 * an async attempt `x-fc-async-task-id` and `x-fc-retry-count`) is forwarded to the child, and its
 * answer comes back whole (status, every header, repeated `set-cookie` kept). An event function
 * (no HTTP trigger) gets its event as FC sends it: `POST /invoke`. A child that cannot be reached
 * rejects with a 502 `CAExited` (it exited) or `CAConnectionFailed`, a failed attempt. As FC ends
 * an invocation that overran the function's timeout, the request to the child is then closed: a
 * sync call's after `timeoutSeconds`, an async attempt's when its signal aborts.
 */
export function customRuntimeListener(target: ChildTarget, event: boolean, timeoutSeconds: number): NodeHandler {
  return async function customRuntimeProxy(req, res) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = event ? { ...req.headers, 'x-fc-control-path': '/invoke' } : req.headers;
    const invocation = getInvocation(req);
    let answer: ChildAnswer;
    try {
      answer = await exchange(target, {
        method: event ? 'POST' : (req.method ?? 'GET'),
        path: event ? '/invoke' : (req.url ?? '/'),
        headers,
        body: Buffer.concat(chunks),
        // An async attempt's stop or timeout aborts its signal; a sync call has only the timer
        // (its signal aborts at the same timeout, given up: the timer says so as a timeout).
        signal: invocation?.type === 'Async' ? invocation.signal : undefined,
        timeoutMs: invocation?.type === 'Async' ? undefined : timeoutSeconds * 1000,
      });
    } catch (cause) {
      // A crash mid-request hangs up before Node reports the exit: wait for it, within a bound.
      const expected = cause instanceof AnswerTooLarge || cause instanceof SyncTimeout;
      if (!target.exit && !invocation?.signal.aborted && !expected)
        await within(target.exited, EXIT_GRACE_MS, () => undefined);
      throw unreachable(target, cause, timeoutSeconds);
    }
    res.statusCode = answer.statusCode;
    for (const name in answer.headers) {
      const value = answer.headers[name];
      if (value !== undefined && !HOP_BY_HOP.has(name)) res.setHeader(name, value);
    }
    res.end(answer.body);
  };
}

function unreachable(target: ChildTarget, cause: unknown, timeoutSeconds: number): FcAsyncError {
  if (cause instanceof SyncTimeout) {
    return new FcAsyncError(
      'FunctionTimeout',
      `${target.name} did not answer within its timeout of ${timeoutSeconds} s; the request to it was closed`,
      { statusCode: 504, cause },
    );
  }
  if (cause instanceof AnswerTooLarge) return responseTooLarge(target.name, true, cause);
  const exit = target.exit;
  if (exit) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    return new FcAsyncError('CAExited', `The custom runtime of ${target.name} ${how}`, { statusCode: 502, cause });
  }
  if (cause instanceof AnswerCut) {
    return new FcAsyncError(
      'CAConnectionFailed',
      `The custom runtime of ${target.name} closed the connection before its answer ended (${cause.message})`,
      { statusCode: 502, cause },
    );
  }
  const why = cause instanceof Error ? cause.message : String(cause);
  return new FcAsyncError(
    'CAConnectionFailed',
    `The custom runtime of ${target.name} could not be reached on port ${target.port}: ${why}`,
    { statusCode: 502, cause },
  );
}

/**
 * FC's rule for a custom runtime: an invocation failed only when the answer carries
 * `x-fc-status: 404`; any status without it (a 500 included) is a success.
 */
export function isCustomRuntimeFailure(response: BridgeResponse): boolean {
  const value = response.headers['x-fc-status'];
  return String(Array.isArray(value) ? value[0] : value).trim() === '404';
}
