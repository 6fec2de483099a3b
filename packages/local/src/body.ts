import type { IncomingMessage } from 'node:http';
import { FcAsyncError, type FcAsyncErrorCode } from '@fc-async/core';

const EMPTY = Buffer.alloc(0);

/** FC's limit for a synchronous request body. */
export const MAX_SYNC_BODY = 32 * 1024 * 1024;

/** The code of a body refused because the emulator already holds its budget of body bytes (503). */
const BODY_BUDGET_EXCEEDED = 'BodyBudgetExceeded';

/**
 * How a client refused for the budget is answered besides the 503: wait a second (`Retry-After`),
 * on a new connection (its body was not read).
 */
const OVER_BUDGET_HEADERS = { 'retry-after': '1', connection: 'close' };

/**
 * How long a body being read may go without a byte before it is refused with a 408 and its bytes
 * given back (nginx's `client_body_timeout`, between two reads): an upload that stalls would
 * otherwise hold its whole `Content-Length` of the budget until Node's `requestTimeout` (5 min).
 */
export const BODY_IDLE_MS = 30_000;

/**
 * The bytes of request bodies one emulator holds at once, the trigger's and the control plane's
 * together: a body counts from its first byte (its whole `Content-Length` at once) until its
 * request no longer needs it ({@link BodyBudget.release}), or until it is refused, its client
 * goes away or sends nothing for `idleMs`. A body that would take the count past `limit` is
 * refused with a 503.
 */
export class BodyBudget {
  /** Bytes counted now. */
  held = 0;

  constructor(
    readonly limit: number,
    /** How long a body being read may go without a byte (a 408 then). @default {@link BODY_IDLE_MS} */
    readonly idleMs = BODY_IDLE_MS,
  ) {}

  /** Gives back the bytes of a body {@link readBody} returned, once its request is answered. */
  release(body: Buffer): void {
    this.held -= body.length;
  }
}

function overBudget(budget: BodyBudget): FcAsyncError {
  return new FcAsyncError(
    BODY_BUDGET_EXCEEDED,
    `The emulator already holds ${budget.held} bytes of request bodies, and this body would take it past its budget of ${budget.limit} bytes (maxBufferedBodyBytes): retry later`,
    { statusCode: 503, headers: OVER_BUDGET_HEADERS },
  );
}

function stalled(idleMs: number): FcAsyncError {
  return new FcAsyncError('RequestTimeout', `The client sent no byte of the request body for ${idleMs / 1000} s`, {
    statusCode: 408,
  });
}

/**
 * Reads a request body, refusing more than `limit` bytes with a 400 (`EntityTooLarge` by
 * default) as soon as the limit is passed, and a client that drops the connection mid-body with
 * a 400 `RequestAborted`. With a `budget`, a body that does not fit in it is refused with a 503
 * `BodyBudgetExceeded` (before it is read when its length is declared), one whose client sends
 * nothing for the budget's `idleMs` with a 408 `RequestTimeout` (its bytes given back at once),
 * and the bytes of a body returned stay counted until the caller releases them. `wanted` is
 * called once the body passes what its head tells (its declared length, the budget), before it
 * is read: where a request sent with `Expect: 100-continue` gets its `100 Continue`, so that a
 * refusal comes before it (the idle bound counts from then).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  code: FcAsyncErrorCode = 'EntityTooLarge',
  budget?: BodyBudget,
  wanted?: () => void,
): Promise<Buffer> {
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
    wanted?.();
    return Promise.resolve(EMPTY);
  }
  const tooLarge = () => new FcAsyncError(code, `The request body is larger than ${limit} bytes`, { statusCode: 400 });
  const declared = length === undefined ? 0 : Number(length);
  if (declared > limit) return Promise.reject(tooLarge());
  // Bytes of this body counted in the budget: the declared length at once, a chunked body as it comes.
  let held = declared;
  if (budget !== undefined) {
    if (budget.held + declared > budget.limit) return Promise.reject(overBudget(budget));
    budget.held += declared;
  }
  wanted?.();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // The body's bytes go back to the budget once it is refused or its client goes away.
    const giveBack = () => {
      clearTimeout(idle);
      if (budget !== undefined) budget.held -= held;
      held = 0;
    };
    const refuse = (refusal: FcAsyncError) => {
      giveBack();
      req.removeAllListeners('data');
      req.resume();
      reject(refusal);
    };
    // Refreshed by each chunk: a client that stops sending gives its bytes back rather than hold them.
    const idle = budget === undefined ? undefined : setTimeout(() => refuse(stalled(budget.idleMs)), budget.idleMs);
    idle?.unref();
    req.on('data', (chunk: Buffer) => {
      idle?.refresh();
      size += chunk.length;
      let refusal: FcAsyncError | undefined;
      if (size > limit) refusal = tooLarge();
      else if (size > held && budget !== undefined) {
        if (budget.held + size - held > budget.limit) refusal = overBudget(budget);
        else {
          budget.held += size - held;
          held = size;
        }
      }
      if (refusal !== undefined) {
        refuse(refusal);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      clearTimeout(idle);
      // The caller owns the count of the body now.
      held = 0;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    // A client that goes away mid-body is not a fault of the server: a 4xx, which callers do not log as an error.
    req.on('error', (error) => {
      giveBack();
      reject(
        req.destroyed && !req.complete
          ? new FcAsyncError('RequestAborted', 'The client closed the connection before the whole body arrived', {
              statusCode: 400,
              cause: error,
            })
          : error,
      );
    });
  });
}
