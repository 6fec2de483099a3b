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
 * The bytes of request bodies one emulator holds at once, the trigger's and the control plane's
 * together: a body counts from its first byte (its whole `Content-Length` at once) until its
 * request no longer needs it ({@link BodyBudget.release}), or until it is refused or its client
 * goes away. A body that would take the count past `limit` is refused with a 503.
 */
export class BodyBudget {
  /** Bytes counted now. */
  held = 0;

  constructor(readonly limit: number) {}

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

/**
 * Reads a request body, refusing more than `limit` bytes with a 400 (`EntityTooLarge` by
 * default) as soon as the limit is passed, and a client that drops the connection mid-body with
 * a 400 `RequestAborted`. With a `budget`, a body that does not fit in it is refused with a 503
 * `BodyBudgetExceeded` (before it is read when its length is declared), and the bytes of a body
 * returned stay counted until the caller releases them. `wanted` is called once the body passes
 * what its head tells (its declared length, the budget), before it is read: where a request sent
 * with `Expect: 100-continue` gets its `100 Continue`, so that a refusal comes before it.
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
    req.on('data', (chunk: Buffer) => {
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
        if (budget !== undefined) budget.held -= held;
        held = 0;
        req.removeAllListeners('data');
        req.resume();
        reject(refusal);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      // The caller owns the count of the body now.
      held = 0;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    // A client that goes away mid-body is not a fault of the server: a 4xx, which callers do not log as an error.
    req.on('error', (error) => {
      if (budget !== undefined) budget.held -= held;
      held = 0;
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
