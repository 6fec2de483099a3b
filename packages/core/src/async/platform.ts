import type { Context } from '@opentelemetry/api';
import { thrownError } from '../app-errors.js';
import { deliverRecord } from '../destinations/deliver.js';
import { DestinationError } from '../destinations/types.js';
import { FcAsyncError } from '../errors.js';
import type { DestinationCondition } from '../fc-types.js';
import { existingSignal, type Invocation } from '../invocation.js';
import type { Logger } from '../logger.js';
import type { FcRequest } from '../request.js';
import { answerAsSent, type BridgeResponse } from '../response.js';
import { functionArn } from './arn.js';
import type { TaskRecord } from './backend.js';
import {
  type AttemptOutcome,
  buildDestinationRecord,
  type Destinations,
  type EngineHooks,
  failedResponse,
  unhandled,
  wrapDestinations,
} from './engine.js';
import type { ResolvedAsyncOptions } from './options.js';
import { captureRequest } from './payload.js';

const failed = new WeakSet<object>();
/** What {@link PlatformAsync} takes for the answer of an app FC ended that did not settle in time. */
const GAVE_UP = Symbol('gave up');
const endedByFc = new WeakSet<object>();

/**
 * The abort reason of a custom runtime's async invocation whose request FC closed before the
 * answer: a StopAsyncTask, or the function's timeout, which the app cannot tell apart.
 */
export function fcEndedInvocation(): FcAsyncError {
  const reason = new FcAsyncError(
    'Stopped',
    'FC closed the request before the answer: the invocation was stopped, or it timed out',
  );
  endedByFc.add(reason);
  return reason;
}

/** Whether FC ended `invocation` (closed its request) before its answer: see {@link fcEndedInvocation}. */
export function endedByFcBeforeAnswer(invocation: Invocation): boolean {
  const signal = existingSignal(invocation);
  return signal?.aborted === true && endedByFc.has(signal.reason as object);
}

/**
 * How long an invocation waits for its destinations on FC at most, every attempt and retry
 * included (docs/destinations.md): FC may freeze the instance once it has the answer, so the
 * answer waits for delivery, but a hung destination must not hold it until the function times out.
 */
const DELIVERY_BOUND_MS = 10_000;
/**
 * Kept back from the function's timeout: after the delivery the answer still has to reach FC
 * (spans flushed, the result written) before FC ends the invocation and retries it. A tenth of
 * the timeout, 1 s at most: a function of FC's shortest timeout (1 s) keeps 900 ms to deliver.
 */
const timeoutMarginMs = (timeoutSeconds: number) => Math.min(1_000, timeoutSeconds * 100);
/** Why a delivery still running at {@link DELIVERY_BOUND_MS} is cut, as its failure says in the log. */
const DELIVERY_BOUND_PASSED = new DestinationError(
  'DestinationAborted',
  `The delivery passed platform mode's ${DELIVERY_BOUND_MS / 1000} s bound (FC may freeze the instance once the invocation returns)`,
  { retryable: false },
);

/**
 * How long the deliveries of an invocation that started at `started` may take: 10 s, or less when
 * the function's timeout (`invocation.timeoutSeconds`) comes sooner, less a margin for the answer
 * to reach FC. Past it FC would end the invocation, count it failed and run it again.
 *
 * @example
 * ```ts
 * const started = Date.now();
 * deliveryBound({ timeoutSeconds: 3 }, started, started + 10).ms; // 2690: 3 s, less 10 ms spent and a 300 ms margin
 * deliveryBound({ timeoutSeconds: 600 }, started).ms; // 10000
 * ```
 */
export function deliveryBound(
  invocation: Pick<Invocation, 'timeoutSeconds'>,
  started: number,
  now = Date.now(),
): { ms: number; reason: DestinationError } {
  const timeout = invocation.timeoutSeconds;
  if (timeout === undefined) return { ms: DELIVERY_BOUND_MS, reason: DELIVERY_BOUND_PASSED };
  const margin = timeoutMarginMs(timeout);
  const left = started + timeout * 1000 - margin - now;
  if (left >= DELIVERY_BOUND_MS) return { ms: DELIVERY_BOUND_MS, reason: DELIVERY_BOUND_PASSED };
  const reason = new DestinationError(
    'DestinationAborted',
    `The delivery passed the time left before the function's ${timeout} s timeout, less ${margin} ms for the answer to reach FC`,
    { retryable: false },
  );
  return { ms: Math.max(0, Math.floor(left)), reason };
}

/**
 * Marks `response`, a refusal of an async call FC (or a queue in front) had already accepted, as a
 * failure: the built-in handler then throws, as for a failed invocation, so that FC counts it,
 * retries it and routes it to its own onFailure rather than drop the task as a success.
 *
 * @example
 * ```ts
 * const refused = markPlatformFailure(jsonResponse(400, { code: 'InvalidArgument', message: 'bad task id' }));
 * isPlatformFailure(refused); // true
 * ```
 */
export function markPlatformFailure(response: BridgeResponse): BridgeResponse {
  failed.add(response);
  return response;
}

/**
 * True when `response` is the result of an async invocation that failed in platform mode: the
 * FC 3.0 / 2.0 handler then throws (and a custom runtime sets `x-fc-status: 404`) so that FC
 * counts the failure, retries it and routes it to its own onFailure.
 *
 * @example
 * ```ts
 * declare const response: BridgeResponse;
 * if (isPlatformFailure(response)) throw new Error('async invocation failed'); // so that FC retries it
 * ```
 */
export function isPlatformFailure(response: BridgeResponse): boolean {
  return failed.has(response);
}

/**
 * Platform mode: FC already answered 202 and owns the queue and the retries. An async
 * invocation runs the app, then calls the in-process destination hooks with FC's record:
 * onSuccess on success, onFailure only on the final attempt (`x-fc-retry-count` ≥
 * `maxAsyncRetryAttempts`, which must mirror the function's FC config). Delivery finishes before
 * the handler returns, since FC may freeze the instance right after, and takes 10 s at most, less
 * when the function's timeout comes sooner (see {@link deliveryBound}).
 *
 * @example
 * ```ts
 * const platform = new PlatformAsync(resolveAsyncOptions({ mode: 'platform' }), {
 *   logger: silentLogger,
 *   redact: createRedactor(),
 *   run: (request) => runNodeHandler((req, res) => res.end('ok'), request),
 * });
 * await platform.drain();
 * ```
 */
export class PlatformAsync {
  /** Invocations under way, their deliveries included: what drain() waits for. */
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly options: ResolvedAsyncOptions,
    private readonly deps: {
      logger: Logger;
      destinations?: Destinations | undefined;
      redact: (headers: FcRequest['headers']) => Record<string, string | string[]>;
      run: (request: FcRequest, invocation: Invocation) => Promise<BridgeResponse>;
      hooks?: EngineHooks | undefined;
    },
  ) {}

  /** `traceParent`: the invocation's trace context, the parent of its destination calls' spans. */
  run(request: FcRequest, invocation: Invocation, traceParent?: Context): Promise<BridgeResponse> {
    this.inFlight++;
    return this.attempt(request, invocation, traceParent).finally(() => {
      this.inFlight--;
      if (this.inFlight === 0) for (const resolve of this.waiters.splice(0)) resolve();
    });
  }

  private async attempt(request: FcRequest, invocation: Invocation, traceParent?: Context): Promise<BridgeResponse> {
    const started = Date.now();
    const destinations = this.deps.destinations ?? {};
    // Without a task id from the caller, FC's is the request id: the app sees it too, as it
    // does in local mode (work keyed on the task id).
    invocation.taskId ??= invocation.requestId;
    const taskId = invocation.taskId;
    this.deps.hooks?.running?.(invocation, taskId);
    const captured =
      destinations.onSuccess || destinations.onFailure ? captureRequest(request, this.deps.redact) : undefined;
    let outcome: AttemptOutcome;
    try {
      const answer = await this.answerOrGiveUp(this.deps.run(request, invocation), invocation);
      if (answer === GAVE_UP) outcome = unhandled(invocation.signal.reason);
      else {
        const response = answerAsSent(request.method, answer);
        outcome = this.options.isFailure(response) ? failedResponse(response) : { kind: 'success', response };
      }
    } catch (error) {
      this.deps.logger.error('async invocation failed', {
        requestId: invocation.requestId,
        attempt: invocation.attempt,
        error: thrownError(error),
      });
      outcome = unhandled(error);
    }
    const final = invocation.attempt >= this.options.maxAsyncRetryAttempts;
    let side: 'onSuccess' | 'onFailure' | undefined =
      outcome.kind === 'success' ? 'onSuccess' : final ? 'onFailure' : undefined;
    if (endedByFcBeforeAnswer(invocation)) {
      // FC ended it (a stop or the timeout: FC knows which, the app does not): what the app answered
      // meanwhile goes nowhere, and the record is FC's to send, to its own destinations.
      // A stop is a user's act, not a fault: told, not warned of.
      this.deps.logger.info('FC ended the async invocation before its answer: no in-process destination is called', {
        requestId: invocation.requestId,
        attempt: invocation.attempt,
      });
      side = undefined;
    }
    if (side && captured && destinations[side]) {
      const record: TaskRecord = {
        taskId,
        requestId: invocation.requestId,
        status: outcome.kind === 'success' ? 'Succeeded' : 'Failed',
        functionArn: functionArn(invocation, this.options.functionName),
        qualifier: invocation.qualifier,
        startedTime: started,
        alreadyRetriedTimes: invocation.attempt,
        events: [],
        payload: captured,
        acceptedAt: started,
        attempts: invocation.attempt + 1,
        taskErrorMessage: outcome.kind === 'failure' ? outcome.message : undefined,
      };
      const condition = outcome.kind === 'success' ? '' : outcome.condition;
      const limit = deliveryBound(invocation, started);
      if (limit.ms === 0) {
        // No time left (the app took the function's whole timeout): FC's own destination, if
        // configured, is where this outcome goes; the in-process one is not started to be cut.
        this.deps.logger.warn('destination not called: no time left before the function times out', {
          requestId: invocation.requestId,
          taskId,
          side,
          reason: limit.reason.message,
        });
      } else await this.deliver(side, condition, outcome, record, limit, traceParent);
    }
    if (outcome.kind === 'success') return outcome.response;
    const response: BridgeResponse = outcome.response ?? {
      statusCode: 500,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ code: 'InternalError', message: 'Internal Server Error' }),
    };
    failed.add(response);
    return response;
  }

  /**
   * The app's answer; or, once FC ended the invocation (closed its request: a stop or the
   * timeout), {@link GAVE_UP} when the app has not settled `stopGraceMs` later. An app that cleans
   * up on the abort and returns without answering (a route that catches it) never settles, and
   * would hold the invocation, and every drain() after it (a pre-stop's), for ever.
   */
  private answerOrGiveUp(
    pending: Promise<BridgeResponse>,
    invocation: Invocation,
  ): Promise<BridgeResponse | typeof GAVE_UP> {
    const signal = existingSignal(invocation);
    // No signal given: nothing can end the call before its answer (FC 3.0's handler, FC 2.0's).
    if (signal === undefined) return pending;
    return new Promise((resolve, reject) => {
      let grace: NodeJS.Timeout | undefined;
      const wait = () => {
        if (!endedByFcBeforeAnswer(invocation)) return;
        grace = setTimeout(() => {
          this.deps.logger.warn(
            'the app did not settle within async.stopGraceMs after FC ended the async invocation: no longer waited for',
            { requestId: invocation.requestId, attempt: invocation.attempt, stopGraceMs: this.options.stopGraceMs },
          );
          resolve(GAVE_UP);
        }, this.options.stopGraceMs);
      };
      if (signal.aborted) wait();
      else signal.addEventListener('abort', wait, { once: true });
      pending.then(resolve, reject).finally(() => {
        clearTimeout(grace);
        signal.removeEventListener('abort', wait);
      });
    });
  }

  /** Calls the `side` destinations with the record, bound by `limit`. */
  private async deliver(
    side: 'onSuccess' | 'onFailure',
    condition: DestinationCondition,
    outcome: AttemptOutcome,
    record: TaskRecord,
    limit: { ms: number; reason: DestinationError },
    traceParent: Context | undefined,
  ): Promise<void> {
    const destinations = this.deps.destinations ?? {};
    const bound = new AbortController();
    const timer = setTimeout(() => bound.abort(limit.reason), limit.ms);
    try {
      const list = wrapDestinations(destinations[side], record, side, condition, this.deps.hooks, traceParent);
      await deliverRecord(list, buildDestinationRecord(record, condition, outcome), {
        logger: this.deps.logger,
        maxElapsedMs: limit.ms,
        signal: bound.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when no invocation is running or delivering (what a custom runtime's pre-stop waits for). */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
