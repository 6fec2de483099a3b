import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { detectInvocation, FcAsyncError, type FcHttpResult, isFcAsyncError, isValidTaskId } from '@fc-async/core';
import { type BodyBudget, MAX_SYNC_BODY, readBody } from './body.js';
import { writeResult } from './event.js';
import { answerHalfClosed } from './half-close.js';
import { asyncBodyTooLarge, asyncLimitOf, NODE_HEAD_BYTES, overTriggerLimits } from './limits.js';
import { endAfterBody } from './linger.js';
import type { EmulatorLog } from './log.js';
import type { FunctionRegistry } from './registry.js';

function sendJson(res: ServerResponse, status: number, body: object, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...extra,
  });
  // A refusal of a body not read yet: the client may still be sending it.
  endAfterBody(res, text);
}

/** A header's first value (Node joins most repeated headers, but not every one). */
const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * True when a request asks to be run asynchronously, as the core's detection reads it; when
 * detection refuses the call (a malformed task id or retry count), as its headers still ask.
 */
function askedAsync(headers: IncomingHttpHeaders): boolean {
  try {
    return detectInvocation(headers).type === 'Async';
  } catch {
    const type = headerValue(headers['x-fc-invocation-type'])?.trim().toLowerCase();
    if (type !== undefined) return type === 'async';
    return headers['x-fc-async-task-id'] !== undefined || headers['x-fc-stateful-async-invocation-id'] !== undefined;
  }
}

/**
 * The task id of an async call's line: the accepted task's, or the one a refused call asked for
 * (a duplicate's 409), when it is a valid id.
 */
function taskIdOf(result: FcHttpResult, headers: IncomingHttpHeaders, async: boolean): string | undefined {
  const accepted = result.headers['x-fc-async-task-id'];
  if (accepted !== undefined || !async) return accepted;
  const asked = headerValue(headers['x-fc-async-task-id']);
  return asked !== undefined && isValidTaskId(asked) ? asked : undefined;
}

/** The trigger's calls carry Node's headers (see `LocalFunction.invoke`). */
const FROM_NODE = Object.freeze({ nodeHeaders: true });

/** What {@link createTriggerServer} keeps of a request under way. */
interface InFlight {
  fn: string;
  /** A sync call's: aborted when a shutdown gives the call up (see `giveUpInFlight`). */
  giveUp?: AbortController | undefined;
}

/** An async call by its header, as `LocalFunction.invoke` tells it: no sync call to give up then. */
const isAsyncCall = (headers: IncomingHttpHeaders) =>
  String(headers['x-fc-invocation-type'] ?? '').toLowerCase() === 'async';

/** An answer waiting for the end of the event-loop turn. */
interface PendingAnswer {
  res: ServerResponse;
  result: FcHttpResult;
  method: string;
  requestId: string;
  fn: string;
}

/**
 * The answers of one event-loop turn, written together once the turn has read every request it
 * could. Under load the client then wakes once per burst of answers rather than once per answer,
 * which is most of what a 202 costs on a loopback connection (docs/performance.md: about 35 µs of
 * CPU per answer). An answer waits at most for the rest of its turn's requests.
 */
class AnswerBatch {
  #pending: PendingAnswer[] = [];
  readonly #onError: (answer: PendingAnswer, error: unknown) => void;

  constructor(onError: (answer: PendingAnswer, error: unknown) => void) {
    this.#onError = onError;
  }

  add(answer: PendingAnswer): void {
    if (this.#pending.push(answer) === 1) setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    const pending = this.#pending;
    this.#pending = [];
    for (const answer of pending) {
      // Answered meanwhile: the emulator shut down before the function answered (cutInFlight).
      if (answer.res.writableEnded) continue;
      try {
        writeResult(answer.res, answer.result, answer.method, answer.requestId);
      } catch (error) {
        this.#onError(answer, error);
      }
    }
  };
}

/** Requests sent with `Expect: 100-continue`, whose `100 Continue` waits until their body is wanted. */
const expectsContinue = new WeakSet<IncomingMessage>();

/**
 * Reads a call's body (FC's 32 MB of a sync call at most). An async call's is held to `asyncLimit`
 * (the function's `async.maxAsyncPayloadBytes`; undefined for a sync call): one whose
 * `Content-Length` is past it is refused unread, before `100 Continue` invites the client to send
 * it, as the engine refuses one it read; a chunked one past 32 MB is cut naming the limit too.
 */
async function readCallBody(
  req: IncomingMessage,
  res: ServerResponse,
  asyncLimit: number | undefined,
  bodies: BodyBudget,
): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (asyncLimit !== undefined && declared > asyncLimit) throw asyncBodyTooLarge(declared, asyncLimit);
  if (declared > MAX_SYNC_BODY) {
    throw new FcAsyncError('InvalidArgument', `The request body is larger than ${MAX_SYNC_BODY} bytes`, {
      statusCode: 400,
    });
  }
  const wanted = expectsContinue.has(req) ? () => res.writeContinue() : undefined;
  try {
    return await readBody(req, MAX_SYNC_BODY, 'InvalidArgument', bodies, wanted);
  } catch (error) {
    // readBody's InvalidArgument is its size limit (a chunked body past it).
    if (asyncLimit !== undefined && isFcAsyncError(error) && error.code === 'InvalidArgument') {
      throw asyncBodyTooLarge(undefined, asyncLimit);
    }
    throw error;
  }
}

/** The trigger server, with what a shutdown needs of it. */
export type TriggerServer = Server & {
  /** Set when the emulator shuts down: new requests answer 503. */
  closing: boolean;
  /** Resolves once no request is under way (a sync call waiting for its function, among them). */
  idle(): Promise<void>;
  /**
   * Gives up the sync calls still waiting for their function (a shutdown past its timeout): each
   * invocation's signal aborts with `reason`, and each call answers it once its app has settled
   * (the app's clean-up, a child process, runs first). Returns how many.
   */
  giveUpInFlight(reason: Error): number;
  /**
   * Answers 503 `ServiceUnavailable` to each request still under way (a sync call whose function
   * has not answered by the end of the shutdown), logging each; returns how many.
   */
  cutInFlight(): number;
};

/**
 * The HTTP trigger: every request becomes an FC 3.0 event for its function (see
 * {@link FunctionRegistry.route}) and goes through the function's handler, async engine included.
 * Trigger-level errors answer `{ code, message }` like fc-async's own. Request bodies count in
 * `bodies` until their invocation returns.
 */
export function createTriggerServer(registry: FunctionRegistry, log: EmulatorLog, bodies: BodyBudget): TriggerServer {
  const failed = (res: ServerResponse, fn: string, error: unknown) => {
    log.logger.error('trigger request failed', { function: fn, error });
    if (!res.headersSent) sendJson(res, 500, { code: 'InternalError', message: 'Internal Server Error' });
    else res.destroy();
  };
  const answers = new AnswerBatch((answer, error) => failed(answer.res, answer.fn, error));
  // Requests under way (by response, with their function's name): a shutdown waits for them, and
  // answers those left at its end. Cheap: no listener per request, a Map entry until it returns.
  const inFlight = new Map<ServerResponse, InFlight>();
  let idleWaiters: (() => void)[] = [];
  const returned = (res: ServerResponse) => {
    inFlight.delete(res);
    if (inFlight.size === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      // After the turn's batch of answers is written (AnswerBatch), which a shutdown would cut.
      setImmediate(() => {
        for (const resolve of waiters) resolve();
      });
    }
  };
  // requireHostHeader: false: a request without Host gets the JSON error below, not Node's bare 400.
  // maxHeaderSize: FC's own limits (overTriggerLimits: a 4 KB target, 8 KB of headers) decide, not
  // Node's 16 KB for both, which answered a 17 KB path 431 "Header overflow" instead of 414.
  const server = createServer(
    { requireHostHeader: false, maxHeaderSize: NODE_HEAD_BYTES },
    async function fcTrigger(req, res) {
      const started = performance.now();
      if (server.closing) {
        sendJson(
          res,
          503,
          { code: 'ServiceUnavailable', message: 'The emulator is shutting down' },
          // As the engine's 503 while it closes: a --watch restart serves again within moments.
          { connection: 'close', 'retry-after': '1' },
        );
        return;
      }
      // HTTP/1.1 requires Host (RFC 9112 section 3.2); Node's own check answers without a body.
      if (req.headers.host === undefined && req.httpVersion === '1.1') {
        sendJson(
          res,
          400,
          { code: 'InvalidArgument', message: 'An HTTP/1.1 request must carry a Host header' },
          { connection: 'close' },
        );
        return;
      }
      const over = overTriggerLimits(req);
      if (over) {
        sendJson(res, over.statusCode, over.toJSON(), { connection: 'close' });
        return;
      }
      const route = registry.route(req.headers.host, req.url ?? '/');
      if (!route) {
        const known = registry.http.map((f) => registry.prefix(f)).join(', ') || 'none';
        sendJson(res, 404, {
          code: 'FunctionNotFound',
          message: `No HTTP function serves this path; functions: ${known}`,
        });
        return;
      }
      const { fn, url } = route;
      const method = req.method ?? 'GET';
      const methods = fn.spec.http?.methods;
      if (methods && !methods.includes(method)) {
        sendJson(
          res,
          405,
          { code: 'MethodNotAllowed', message: `The HTTP trigger of ${fn.spec.name} accepts ${methods.join(', ')}` },
          { allow: methods.join(', ') },
        );
        return;
      }
      const asyncCall = isAsyncCall(req.headers);
      // A sync call can be given up by a shutdown: the app's signal then tells it to stop.
      const giveUp = fn.givesUp && !asyncCall ? new AbortController() : undefined;
      inFlight.set(res, { fn: fn.spec.name, giveUp });
      // Counted in the emulator's budget of body bytes until the invocation returns.
      let body: Buffer | undefined;
      try {
        // An engine that does not tell its limit (another copy of the core) checks it once the body is read.
        const asyncLimit = asyncCall ? (asyncLimitOf(fn.engine) ?? MAX_SYNC_BODY) : undefined;
        body = await readCallBody(req, res, asyncLimit, bodies);
        const call = { method, url, headers: req.headers, body, sourceIp: req.socket.remoteAddress };
        const { result, requestId } = await fn.invoke(
          call,
          giveUp ? { nodeHeaders: true, giveUp: giveUp.signal } : FROM_NODE,
        );
        bodies.release(body);
        body = undefined;
        answers.add({ res, result, method, requestId, fn: fn.spec.name });
        const q = url.indexOf('?');
        // An accepted async call is a 202 carrying its task id (whatever header asked for it); a
        // refused one (400, 409, 429, 503) is still an async call.
        const async =
          (result.statusCode === 202 && result.headers['x-fc-async-task-id'] !== undefined) || askedAsync(req.headers);
        log.invocation({
          function: fn.spec.name,
          requestId,
          type: async ? 'Async' : 'Sync',
          status: result.statusCode,
          method,
          path: q < 0 ? url : url.slice(0, q),
          durationMs: Math.round(performance.now() - started),
          taskId: taskIdOf(result, req.headers, async),
          via: 'http',
        });
      } catch (error) {
        if (body !== undefined) bodies.release(body);
        // A refusal (a 4xx, or a 503 to retry later: the body budget), not a fault of the emulator.
        if (isFcAsyncError(error) && (error.statusCode < 500 || error.statusCode === 503)) {
          // Unless answered already: a shutdown's 503 to a request whose body was still coming, then cut.
          if (!res.headersSent)
            sendJson(res, error.statusCode, error.toJSON(), { connection: 'close', ...error.headers });
        } else {
          failed(res, fn.spec.name, error);
        }
      } finally {
        returned(res);
      }
    },
  ) as TriggerServer;
  server.closing = false;
  server.idle = () =>
    inFlight.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve));
  server.giveUpInFlight = (reason) => {
    let given = 0;
    for (const [res, { giveUp }] of inFlight) {
      if (giveUp === undefined || giveUp.signal.aborted || res.headersSent) continue;
      given++;
      giveUp.abort(reason);
    }
    return given;
  };
  server.cutInFlight = () => {
    let cut = 0;
    for (const [res, { fn }] of inFlight) {
      if (res.headersSent || res.destroyed) continue;
      cut++;
      const request = `${res.req.method} ${(res.req.url ?? '/').split('?')[0]}`;
      log.logger.warn('the emulator shut down before the function answered: 503 sent', { function: fn, request });
      sendJson(
        res,
        503,
        { code: 'ServiceUnavailable', message: 'The emulator shut down before the function answered' },
        { connection: 'close' },
      );
    }
    return cut;
  };
  // `100 Continue` is sent when the body is wanted (readCallBody): a request refused before
  // (too large, no such function, the emulator shutting down) is refused without it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    expectsContinue.add(req);
    server.emit('request', req, res);
  });
  server.keepAliveTimeout = 65_000;
  // Node keeps the first 1,000 headers (2,000 names and values) and drops the rest without a word (Content-Length or
  // X-Fc-Invocation-Type among them: an async call run sync, a body lost): every header is kept, and
  // the 8 KB limit refuses a request with too many.
  server.maxHeadersCount = 0;
  answerHalfClosed(server);
  return server;
}
