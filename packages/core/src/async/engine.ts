import { isUtf8 } from 'node:buffer';
import { setMaxListeners } from 'node:events';
import zlib from 'node:zlib';
import type { Context } from '@opentelemetry/api';
import { appErrorLogged, cutErrorText, isInvocationAbort, thrownError, thrownText } from '../app-errors.js';
import { noteBookkeepingFailure } from '../bursts.js';
import {
  type DeliveryResult,
  type DestinationOutcome,
  deliverResolved,
  SHUTTING_DOWN,
} from '../destinations/deliver.js';
import { resolveSettings, type Settings } from '../destinations/deliver-options.js';
import type { Destination } from '../destinations/types.js';
import { MAX_TIMER_MS, objectOption } from '../destinations/validate.js';
import { asyncBodyTooLarge, badRequest, FcAsyncError, isFcAsyncError } from '../errors.js';
import type { AsyncTask, DestinationCondition, DestinationRecord } from '../fc-types.js';
import { checkCallerTaskId, type Invocation } from '../invocation.js';
import type { Logger } from '../logger.js';
import type { FcRequest } from '../request.js';
import { answerAsSent, type BridgeResponse, createBodyClassifier, hasFcFailureStatus } from '../response.js';
import { abandonRun, expectAbandon } from './abandon.js';
import { lastFunctionArn } from './arn.js';
import {
  type AsyncBackend,
  type BackendContext,
  type JobResult,
  type QueueDriver,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
  toAsyncTask,
} from './backend.js';
import { Deadlines } from './deadlines.js';
import { memory } from './memory.js';
import { backoffDelay, type ResolvedAsyncOptions } from './options.js';
import { normaliseQuery } from './paging.js';
import { captureRequest, replayRequest, serializeRequest } from './payload.js';
import { Running, replayInvocation } from './running.js';
import { BACKEND_START_MS, type Made, startWithin } from './start-bound.js';
import { currentStartHold, type EngineStartHold } from './start-hold.js';

/**
 * `options.destinations`: where task outcomes go. Each side takes one destination or several.
 *
 * @example
 * ```ts
 * const secret = process.env.HOOK_SECRET!;
 * const destinations: Destinations = {
 *   onSuccess: functionDestination((record) => console.log('done', record.requestContext.requestId)),
 *   onFailure: [httpDestination('https://hooks.example.com/fc', { secret }), jsonlDestination('./failures.jsonl')],
 * };
 * ```
 */
export interface Destinations {
  onSuccess?: Destination | Destination[] | undefined;
  onFailure?: Destination | Destination[] | undefined;
}

/**
 * What FC's PutAsyncInvokeConfig can change on a running function. Its `destinations` are FC's:
 * {@link AsyncEngine.configure} calls them as well as the handler's own.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * const config: AsyncInvokeConfig = { maxAsyncRetryAttempts: 0, destinations: { onFailure: jsonlDestination('failed.jsonl') } };
 * handler.engine?.configure(config); // what PutAsyncInvokeConfig does in the emulator
 * ```
 */
export interface AsyncInvokeConfig {
  maxAsyncRetryAttempts?: number;
  maxAsyncEventAgeInSeconds?: number;
  destinations?: Destinations;
}

/**
 * Seams for tracing: all optional, all no-ops by default.
 *
 * @example
 * ```ts
 * const hooks: EngineHooks = {
 *   attempt(task, attempt, run) {
 *     console.log('attempt', task.taskId, attempt);
 *     return run();
 *   },
 * };
 * ```
 */
export interface EngineHooks {
  /** Before the task is stored: returns the trace context to keep with it. */
  accepted?(
    task: TaskRecord,
    invocation: Invocation,
  ): { traceContext?: Record<string, string>; traceId?: string } | undefined;
  /**
   * An async invocation runs as an attempt of task `taskId` that a queue in front accepted (FC in
   * platform mode): the caller's task id, else the request id.
   */
  running?(invocation: Invocation, taskId: string): void;
  /** Runs one attempt inside whatever context the hook sets up; `end` receives the outcome. */
  attempt?<T>(task: TaskRecord, attempt: number, run: () => Promise<T>): Promise<T>;
  /** Records an attempt's outcome on the current span (called inside `attempt`). */
  attemptEnded?(task: TaskRecord, attempt: number, outcome: AttemptOutcome, willRetry: boolean): void;
  /** Runs a destination delivery. */
  delivery?<T>(
    task: TaskRecord,
    side: 'onSuccess' | 'onFailure',
    condition: DestinationCondition,
    run: () => Promise<T>,
  ): Promise<T>;
  /**
   * Wraps each destination of a delivery (called once per destination and delivery), e.g. to trace
   * every call. `parent`: the trace context the delivery belongs to, when the caller has one (in
   * platform mode, the invocation's), for a tracer that cannot rely on an active context.
   */
  destination?(
    task: TaskRecord,
    side: 'onSuccess' | 'onFailure',
    condition: DestinationCondition,
    destination: Destination,
    parent?: Context,
  ): Destination;
  /**
   * A task ended without an attempt telling it: expired in the queue, stopped while waiting, found
   * stopping after a crash (the process that ran its attempt died), or stopped as its attempt ended
   * otherwise (the stop written first, by another instance).
   */
  endedWithoutAttempt?(task: TaskRecord): void;
  /**
   * An attempt a crash cut short (its process died, or a shared queue's instance was held up past
   * its lock), recorded now: its span died with that process. `task` may come without its request.
   */
  attemptInterrupted?(
    task: Omit<TaskRecord, 'payload'>,
    attempt: number,
    outcome: Extract<AttemptOutcome, { kind: 'failure' }>,
    willRetry: boolean,
  ): void;
  /**
   * Whether the store took the end of an attempt that `attemptEnded` or `attemptInterrupted` told
   * (`task`: the record they were given), before its destination is called; once per attempt, after
   * either. Refused (`false`): another end owns the task, a stop written first or a newer attempt
   * (another instance of a shared queue took the task over): the task did not end as the attempt
   * did. A write the store failed is told taken: its end is kept and written as it ended later.
   */
  attemptWritten?(task: Omit<TaskRecord, 'payload'>, attempt: number, accepted: boolean): void;
  /**
   * As the end of the attempt `task` was given to (`attemptEnded`, `attemptInterrupted`) is written
   * with a delivery pending: a trace context to keep with it (`deliveryTraceContext`), under which
   * a delivery made again after a crash is traced as the first would have been; none by default.
   */
  deliveryContext?(task: Omit<TaskRecord, 'payload'>): Record<string, string> | undefined;
}

/**
 * What happened to an attempt.
 *
 * @example
 * ```ts
 * const hooks: EngineHooks = {
 *   attemptEnded(task, attempt, outcome: AttemptOutcome) {
 *     if (outcome.kind === 'failure') console.warn(task.taskId, attempt, outcome.condition, outcome.message);
 *   },
 * };
 * ```
 */
export type AttemptOutcome =
  | { kind: 'success'; response: BridgeResponse }
  | {
      kind: 'failure';
      condition: 'UnhandledInvocationError' | 'InvocationError';
      message: string;
      errorType: string;
      response?: BridgeResponse | undefined;
    }
  | { kind: 'stopped'; response?: BridgeResponse | undefined };

/**
 * What the engine reports to subscribers (the emulator's log lines and dashboard).
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * handler.engine?.subscribe((event: EngineEvent) => {
 *   if (event.type === 'attempt') console.log(event.taskId, event.outcome, event.status);
 * });
 * ```
 */
export type EngineEvent =
  | { type: 'accepted'; taskId: string; requestId: string; delayMs: number }
  /** An attempt claimed the task (it is `Running`), about to call the app. */
  | { type: 'started'; taskId: string; requestId: string; attempt: number }
  /** A stop reached a running task (it is `Stopping` until its attempt settles). */
  | { type: 'stopping'; taskId: string; requestId: string }
  | {
      type: 'attempt';
      taskId: string;
      requestId: string;
      attempt: number;
      outcome: AttemptOutcome['kind'];
      durationMs: number;
      /**
       * The task's status once this attempt's end is recorded. When the end is refused because a
       * newer attempt (on another instance) or a stop owns the task, the status the task has then.
       */
      status: AsyncTask['status'];
    }
  | {
      type: 'finished';
      taskId: string;
      requestId: string;
      status: AsyncTask['status'];
      condition: DestinationCondition;
      /** Attempts made, 0 when none ran (a task stopped or expired while it waited). */
      attempts: number;
    }
  | {
      type: 'delivered';
      taskId: string;
      requestId: string;
      destinationStatus: string;
      /** The side the record went to: `onSuccess`, or `onFailure` (a failed, stopped or expired task). */
      side: 'onSuccess' | 'onFailure';
      /** Each destination called, by label, with how its delivery ended. */
      destinations: readonly DestinationOutcome[];
    };

/**
 * The tasks API of a handler in local mode: FC's GetAsyncTask, ListAsyncTasks and
 * StopAsyncTask, in-process.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * const { tasks } = await handler.tasks.list({ status: 'Running' });
 * for (const task of tasks) await handler.tasks.stop(task.taskId);
 * ```
 */
export interface TaskApi {
  /** The task, with `taskPayload`; `undefined` when unknown. */
  get(taskId: string): Promise<AsyncTask | undefined>;
  list(query?: TaskQuery): Promise<TaskPage>;
  /**
   * Stops a task: a queued one becomes `Stopped` without running; a running one becomes
   * `Stopping`, its signal aborts, and it becomes `Stopped` when the attempt settles. Throws an
   * `FcAsyncError`: 404 `AsyncTaskNotFound`, or 400 `AsyncTaskAlreadyFinished` for a finished task.
   */
  stop(taskId: string): Promise<AsyncTask>;
}

const RETURN_PAYLOAD_CAP = 1024 * 1024;
/**
 * After a failed backend start, how long the next one waits before it is tried (on demand): a
 * flood of requests while Redis is down tries once, not once each.
 */
const BACKEND_RETRY_MS = 1000;
/** At close, the time the onFailure calls of the tasks it stopped get past the stop's grace. */
const STOPPED_DELIVERY_MS = 2000;
const isText = createBodyClassifier();

/**
 * The async engine of local mode: accepts async requests with a 202, queues them, runs each
 * attempt through the app with retries, backoff, event age, timeout and stop, keeps FC-shaped
 * task records, and calls the destination hooks exactly once per task.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * const engine: AsyncEngine | undefined = handler.engine; // undefined in platform mode
 * const off = engine?.subscribe((event) => console.log(event.type));
 * await engine?.drain();
 * off?.();
 * ```
 */
export class AsyncEngine {
  readonly tasks: TaskApi;
  private store!: TaskStore;
  private queue!: QueueDriver;
  /** The backend's start under way, done, or failed last (see `currentStart`). */
  private ready: Promise<void>;
  private isReady = false;
  private readonly backend: AsyncBackend;
  private readonly backendContext: BackendContext;
  /** When the last start failed (`performance.now()`), while no other is under way. */
  private failedAt: number | undefined;
  /** Starts tried so far. */
  private starts = 0;
  /** Set while the backend waits for a start hold: called when something first waits for the engine. */
  private startWaited: (() => void) | undefined;
  private readonly running = new Map<string, Running>();
  /**
   * Tasks whose last bookkeeping write the store refused; their next job may find them Running.
   * With the request id counted under the task id then ('' for none): a job clears only the refusal
   * it saw (see process), and a job that finds the task gone counts only that one done (see attempt).
   */
  private readonly unrecorded = new Map<string, string>();
  /** Tasks whose stop the store refused (it may be written all the same): their next job looks again. */
  private readonly refusedStops = new Set<string>();
  /**
   * The outcome of an attempt that ran to its end here while the store refused to record it (Redis
   * away, a full disk), by task: the task's next job records it (see redelivered) instead of
   * counting the attempt interrupted and running the app again. The oldest go first past
   * {@link MAX_UNWRITTEN_ENDS}; another instance that takes the job counts it interrupted.
   */
  private readonly unwrittenEnds = new Map<string, { attempt: number; outcome: AttemptOutcome; durationMs: number }>();
  /** Stops under way, by task: one at a time per task (see stopOnce). */
  private readonly stops = new Map<string, Promise<AsyncTask>>();
  /** Jobs being processed: a shutdown waits for aborted attempts to record their end. */
  private readonly inFlight = new Set<Promise<JobResult>>();
  /** Destination calls under way: close() gives them a moment before it cuts them (see close). */
  private deliveriesUnderWay = 0;
  /** Attempts over whose end is being recorded (and, with a shared queue, delivered): see close. */
  private endsUnderWay = 0;
  /** The same, by task id and side: what a process quitting now leaves undelivered (see owedDeliveries). */
  private readonly delivering = new Map<string, 'onSuccess' | 'onFailure'>();
  /** Resolved when no destination call is under way (some run outside `inFlight`: a stop's, a recovery's). */
  private deliveryWaiters: (() => void)[] = [];
  private outstanding = 0;
  /**
   * Tasks of a local queue counted in `outstanding` and not counted done yet, from before the store
   * has them: the request id of each, by task id. A task is counted done once, by the first of its
   * ends to get there (a settle, a refused insert or queueing, a job finding its record gone); a
   * settle that finds it done already calls no destination: another settle of it did, or does.
   */
  private readonly counted = new Map<string, string>();
  /** The same, `taskId requestId`, for a task accepted while another of its id was counted (rare). */
  private readonly countedToo = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private closing = false;
  /** close() gave up on a start still under way: what it makes is closed, never used. */
  private startAbandoned = false;
  /** Rejects when close() gives up on the start: what waits for it gets a 503 then, not when it comes. */
  private giveUpStart: (error: FcAsyncError) => void = () => {};
  private readonly startGivenUp = new Promise<never>((_resolve, reject) => {
    this.giveUpStart = reject;
  });
  /** close() is past its deadline with a persistent backend: no attempt starts any more. */
  private cut = false;
  /** While close() waits: it is told when all that is left is delayed past its deadline (see `parked`). */
  private parkWatch: ParkWatch | undefined;
  private readonly listeners = new Set<(event: EngineEvent) => void>();
  /** Listeners of {@link watchStore}, and how to stop the store's watch while it runs. */
  private readonly storeWatchers = new Set<(taskIds: readonly string[]) => void>();
  private unwatchStore: (() => void) | undefined;
  private config: { maxAsyncRetryAttempts: number; maxAsyncEventAgeInSeconds: number; destinations: Destinations };
  private readonly persistent: boolean;
  /** The task ARN of an invocation (one function, one ARN: the last one is remembered). */
  private readonly arnOf = lastFunctionArn();
  /** How destinations are called: `deliverRecord`'s defaults with the engine's logger. */
  private readonly delivery: Settings;
  /** Aborted by close() past its deadline and grace: deliveries still under way end then. */
  private readonly shutdown = new AbortController();
  /** Destination calls under way outside the queue's slots (see `settleAside`). */
  private deliveringAside = 0;
  /** Accepts past the `maxQueuedTasks` check whose task is not queued yet (the store writes it). */
  private accepting = 0;
  /** About the bytes those destination calls hold (see `deliveryBytes`), against `maxDeliveryBytes`. */
  private deliveringBytes = 0;
  /** Every attempt's timeout (`timeoutSeconds`), under one timer. */
  private readonly timeouts: Deadlines;
  /** A close's own stop grace, shorter than `stopGraceMs` (see `CloseOptions.stopWithinMs`). */
  private closeGraceMs: number | undefined = undefined;

  constructor(
    private readonly options: ResolvedAsyncOptions,
    private readonly deps: {
      logger: Logger;
      destinations?: Destinations | undefined;
      redact: (headers: FcRequest['headers']) => Record<string, string | string[]>;
      /** `acceptedByMiddleware`: the task's stored mark (see `CapturedRequest.acceptedByMiddleware`). */
      run: (request: FcRequest, invocation: Invocation, acceptedByMiddleware: boolean) => Promise<BridgeResponse>;
      hooks?: EngineHooks | undefined;
      instanceId?: string | undefined;
      /** The handler's environment: an attempt's invocation reads `FC_*` from it, as a sync call's does. */
      env?: Readonly<Record<string, string | undefined>> | undefined;
    },
  ) {
    this.config = {
      maxAsyncRetryAttempts: options.maxAsyncRetryAttempts,
      maxAsyncEventAgeInSeconds: options.maxAsyncEventAgeInSeconds,
      destinations: deps.destinations ?? {},
    };
    // Every delivery under way listens to it: no MaxListenersExceededWarning past ten of them.
    setMaxListeners(0, this.shutdown.signal);
    this.delivery = resolveSettings({ logger: deps.logger, signal: this.shutdown.signal });
    this.timeouts = new Deadlines(options.timeoutSeconds * 1000);
    const backend = options.backend ?? memory();
    this.backend = backend;
    this.persistent = backend.persistent;
    const context = { concurrency: options.concurrency, logger: deps.logger };
    this.backendContext = context;
    const hold = currentStartHold();
    // Bounded from the call of create(), not from the hold's wait before it.
    const created = hold
      ? this.heldStart(hold, backend).then(() => this.bounded(Promise.resolve(backend.create(context))))
      : this.bounded(firstCreate(backend, context));
    this.ready = this.startFrom(created);
    this.tasks = {
      get: (taskId) => this.getTask(taskId),
      list: (query) => this.listTasks(query),
      stop: (taskId) => this.stopOnce(taskId),
    };
  }

  /**
   * When the backend of an engine made under a start hold (see start-hold.ts) may start. Whatever
   * waits for the engine tells the hold (`startWaited`): the wait may be what the hold's own release
   * waits for (an entry awaiting readiness at its top level, while the emulator loads it).
   */
  private heldStart(hold: EngineStartHold, backend: AsyncBackend): Promise<void> {
    // The backend itself: a holder that handed it out (the emulator's held defaults) knows it so.
    const { start, waited } = hold.enter(backend);
    this.startWaited = waited;
    return start.then(() => {
      this.startWaited = undefined;
    });
  }

  /** Tells the start hold, if the backend still waits for one, that something waits for the engine. */
  private startWanted(): void {
    const waited = this.startWaited;
    if (waited === undefined) return;
    this.startWaited = undefined;
    waited();
  }

  /**
   * One try at starting the backend, from its `create()`: what it made is taken into use (stop
   * requests, the queue started, unfinished tasks recovered). A failure is logged, and the next
   * demand past {@link BACKEND_RETRY_MS} tries again (see `currentStart`).
   */
  private startFrom(created: Promise<Made>): Promise<void> {
    this.failedAt = undefined;
    const tries = ++this.starts;
    const attempt = created.then((made) =>
      this.startAbandoned ? this.releaseAbandoned(made) : this.takeIntoUse(made),
    );
    // Registered before anything awaits the attempt: `failedAt` is set when a waiter sees the failure.
    attempt.then(
      () => {
        if (tries > 1) this.deps.logger.info('async backend started', { backend: this.backend.name, tries });
      },
      (error: unknown) => {
        this.failedAt = performance.now();
        if (this.startAbandoned) return;
        // An fc-async error says what is wrong (Redis unreachable, a task file in use): its message and
        // its cause's, not the stack of fc-async's own frames (the CLI prints it again as its last line).
        const fields = isFcAsyncError(error)
          ? { code: error.code, reason: error.message, cause: causeMessage(error.cause) }
          : { error };
        this.deps.logger.error('async backend failed to start', { backend: this.backend.name, tries, ...fields });
      },
    );
    const ready = Promise.race([attempt, this.startGivenUp]);
    // Handled as `attempt` is: a failed start is answered to whoever waits, not an unhandled rejection.
    ready.catch(() => undefined);
    return ready;
  }

  private async takeIntoUse({ store, queue }: { store: TaskStore; queue: QueueDriver }): Promise<void> {
    this.store = store;
    this.queue = queue;
    try {
      store.onStopRequested?.((taskId) => this.stopLocal(taskId));
      store.onStopsMayBeMissed?.(() => void this.stopThoseStopping());
      await queue.start((job) => this.process(job.taskId));
      if (this.persistent && !queue.shared) await this.recover();
    } catch (error) {
      // The next try opens its own: this one's must not hold a file lock or connections meanwhile.
      await this.release(queue, store);
      throw error;
    }
    this.isReady = true;
    this.startStoreWatch();
  }

  /**
   * A create() under way, bounded by the backend's `startTimeoutMs` (see `startWithin`): what one
   * that settles past it makes is closed, as the start that failed with it never took it into use.
   */
  private bounded(created: Promise<Made>): Promise<Made> {
    return startWithin(created, this.backend.startTimeoutMs ?? BACKEND_START_MS, ({ queue, store }) => {
      if (!this.startAbandoned) {
        this.deps.logger.warn('async backend started past its start bound: closed it', { backend: this.backend.name });
      }
      void this.release(queue, store);
    });
  }

  /** What a start close() gave up on made when it came: closed, never used (see `close`). */
  private async releaseAbandoned({ queue, store }: Made): Promise<void> {
    await this.release(queue, store);
    throw shutDown();
  }

  private async release(queue: QueueDriver, store: TaskStore): Promise<void> {
    try {
      await queue.close();
      await store.close?.();
    } catch (error) {
      this.deps.logger.warn('releasing a backend that failed to start failed', { error });
    }
  }

  /**
   * The backend's start under way or done. Past {@link BACKEND_RETRY_MS} after a failed one, a
   * new try, bounded as the first by the backend's own timeout (none once closing); before that,
   * the failed one, so that a request answers at once with its error.
   */
  private currentStart(): Promise<void> {
    const failedAt = this.failedAt;
    if (failedAt !== undefined && !this.closing && performance.now() - failedAt >= BACKEND_RETRY_MS) {
      this.ready = this.startFrom(
        this.bounded(new Promise((resolve) => resolve(this.backend.create(this.backendContext)))),
      );
    }
    return this.ready;
  }

  /**
   * The backend, up; a 503 when it is not: the backend's own error (`RedisUnavailable`, say),
   * or `BackendUnavailable`. A failed start is tried again here (see `currentStart`).
   */
  private async backendReady(): Promise<void> {
    this.startWanted();
    try {
      await this.currentStart();
    } catch (cause) {
      if (isFcAsyncError(cause)) throw cause;
      throw new FcAsyncError('BackendUnavailable', 'The async backend is not available', {
        statusCode: 503,
        cause,
        retryAfterSeconds: 1,
      });
    }
  }

  /**
   * Resolves once the backend is up (and, for persistent ones, unfinished tasks are requeued);
   * rejects with the error of its start when it failed. A failed start is tried again on the next
   * demand (this, an async request, a tasks call) once a second has passed since it failed.
   */
  whenReady(): Promise<void> {
    this.startWanted();
    return this.currentStart();
  }

  /**
   * Changes retries, event age and destinations for tasks from now on (FC's PutAsyncInvokeConfig).
   * Retries and age replace the handler's own; destinations are FC's, called as well as the
   * handler's own (on FC both get each record), so configuring none leaves the handler's own.
   */
  configure(config: AsyncInvokeConfig): void {
    this.config = {
      maxAsyncRetryAttempts: config.maxAsyncRetryAttempts ?? this.options.maxAsyncRetryAttempts,
      maxAsyncEventAgeInSeconds: config.maxAsyncEventAgeInSeconds ?? this.options.maxAsyncEventAgeInSeconds,
      destinations: bothDestinations(this.deps.destinations, config.destinations),
    };
  }

  /**
   * The destination calls under way, by task id and side (a webhook that is down, retried): each a
   * finished task whose record a process that quits now does not deliver. Synchronous, for a
   * second Ctrl-C that exits at once.
   *
   * @example
   * ```ts
   * declare const engine: AsyncEngine;
   * engine.owedDeliveries(); // [{ taskId: 't1', side: 'onSuccess' }]
   * ```
   */
  owedDeliveries(): { taskId: string; side: 'onSuccess' | 'onFailure' }[] {
    return [...this.delivering].map(([taskId, side]) => ({ taskId, side }));
  }

  /** Every attempt's timeout (`async.timeoutSeconds`), in seconds. */
  get timeoutSeconds(): number {
    return this.options.timeoutSeconds;
  }

  /**
   * The largest async request body {@link AsyncEngine.accept} takes (`async.maxAsyncPayloadBytes`),
   * in bytes: a server in front of the engine can refuse a larger one from its `Content-Length`
   * before reading it.
   *
   * @example
   * ```ts
   * declare const engine: AsyncEngine;
   * engine.maxAsyncPayloadBytes; // 131072 by default
   * ```
   */
  get maxAsyncPayloadBytes(): number {
    return this.options.maxAsyncPayloadBytes;
  }

  /** The config in force. */
  currentConfig(): Readonly<{
    maxAsyncRetryAttempts: number;
    maxAsyncEventAgeInSeconds: number;
    destinations: Destinations;
  }> {
    return this.config;
  }

  /**
   * Receives the ids of tasks that other instances sharing this engine's store changed (see
   * `TaskStore.watch`; an empty list: changes may have been missed, read again), from when the
   * backend is started; returns the unsubscribe function. Nothing for a store only this process
   * uses: {@link subscribe}'s events carry all its changes. The store watches only while a
   * listener is subscribed.
   *
   * @example
   * ```ts
   * declare const engine: AsyncEngine;
   * const off = engine.watchStore((taskIds) => console.log('changed elsewhere:', taskIds));
   * off();
   * ```
   */
  watchStore(listener: (taskIds: readonly string[]) => void): () => void {
    this.storeWatchers.add(listener);
    this.startStoreWatch();
    return () => {
      if (!this.storeWatchers.delete(listener) || this.storeWatchers.size > 0) return;
      this.unwatchStore?.();
      this.unwatchStore = undefined;
    };
  }

  /** Watches the store once it is started and someone listens (see {@link watchStore}). */
  private startStoreWatch(): void {
    if (this.unwatchStore || this.storeWatchers.size === 0 || !this.isReady || !this.store.watch) return;
    this.unwatchStore = this.store.watch((taskIds) => {
      for (const listener of this.storeWatchers) {
        try {
          listener(taskIds);
        } catch (error) {
          this.deps.logger.warn('store watch listener threw', { error });
        }
      }
    });
  }

  /** Receives every task event; returns the unsubscribe function. */
  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: EngineEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        try {
          this.deps.logger.warn('engine listener threw', { error });
        } catch {
          // A logger that throws too: the task goes on (an escape here left it Running for good).
        }
      }
    }
  }

  /**
   * Accepts an async request: validates it, records the task, queues it and answers 202 with
   * `x-fc-request-id` and `x-fc-async-task-id`. Throws an `FcAsyncError` for a request it
   * refuses (400, 409, 429, 503); nothing is queued then. A body past `maxAsyncPayloadBytes` is
   * refused, a call FC makes itself (a destination record) included, as FC holds those to its async
   * limit too.
   * `acceptedByMiddleware`: an `fcAsync()` middleware accepts it, after the middleware in front of
   * it passed the request; stored with the task (see `CapturedRequest.acceptedByMiddleware`).
   */
  async accept(request: FcRequest, invocation: Invocation, acceptedByMiddleware = false): Promise<BridgeResponse> {
    if (this.closing) {
      throw new FcAsyncError('ServiceUnavailable', 'The function is shutting down and accepts no new async requests', {
        statusCode: 503,
        retryAfterSeconds: 1,
      });
    }
    // A caller's own task id: FC's rule (an id FC made, the request id, passes detection only).
    if (invocation.taskId !== undefined) checkCallerTaskId(invocation.taskId);
    if (!this.isReady) await this.backendReady();
    const max = this.options.maxAsyncPayloadBytes;
    if (request.body.length > max) {
      // FC's HTTP trigger says InvalidArgument (its API EntityTooLarge: the emulator's FC API refuses such a payload itself).
      throw asyncBodyTooLarge(`${request.body.length} bytes`, max);
    }
    const delayMs = parseDelay(request.headers['x-fc-async-delay']);
    // Tasks whose destination is being called count too: they hold their record and answer in
    // memory, and a destination that is down must not let them grow without bound.
    if (this.deliveringBytes > this.options.maxDeliveryBytes) {
      throw new FcAsyncError(
        'ResourceThrottled',
        `Destination calls under way hold about ${Math.round(this.deliveringBytes / 1048576)} MiB (maxDeliveryBytes); retry later`,
        { statusCode: 429, retryAfterSeconds: 1 },
      );
    }
    // Accepts still writing their task count as waiting: a durable store answers later, and a
    // burst over many connections must not all pass the bound meanwhile.
    const waiting = this.queue.pending() + this.accepting;
    if (waiting + this.deliveringAside >= this.options.maxQueuedTasks) {
      throw new FcAsyncError(
        'ResourceThrottled',
        throttledMessage(this.options.maxQueuedTasks, waiting, this.deliveringAside),
        {
          statusCode: 429,
          retryAfterSeconds: 1,
        },
      );
    }
    // Counted as waiting until the queue counts it (the same turn with the memory store).
    this.accepting++;
    let accepting = true;
    try {
      const taskId = invocation.taskId ?? invocation.requestId;
      const inserting = this.store.insert(this.newTask(taskId, request, invocation, delayMs, acceptedByMiddleware));
      const shared = this.queue.shared === true;
      // A shared queue takes the job in the same round trip (see QueueDriver.shared). On a 409 it
      // refuses the id if it holds the other task's job; a job it takes finds a finished task.
      // One that throws at once (a queue may answer synchronously) is a refusal like a rejection: the
      // insert is still awaited (its own refusal handled), and a task it wrote becomes Invalid.
      const early = shared ? enqueueNow(this.queue, taskId, delayMs) : undefined;
      early?.catch(() => undefined);
      // Counted while a durable store writes it: a close() begun meanwhile waits for it, not past it;
      // a stop that finds it meanwhile counts it done.
      this.outstanding++;
      const requestId = invocation.requestId;
      if (!shared) {
        // Another task of this id counted (unfinished, or an accept of it under way): rare.
        if (this.counted.has(taskId)) this.countedToo.add(`${taskId} ${requestId}`);
        else this.counted.set(taskId, requestId);
      }
      let inserted: boolean;
      try {
        // Stores and queues may answer synchronously (memory, sqlite's reads): no await then.
        inserted = isPromise(inserting) ? await inserting : inserting;
      } catch (error) {
        this.notAccepted(taskId, requestId, shared);
        throw error;
      }
      if (!inserted) {
        this.notAccepted(taskId, requestId, shared);
        throw new FcAsyncError('AsyncTaskAlreadyExists', await this.existsMessage(taskId), { statusCode: 409 });
      }
      try {
        const queued = early ?? this.queue.enqueue({ taskId }, delayMs);
        if (isPromise(queued)) await queued;
        this.accepting--;
        accepting = false;
      } catch (error) {
        await this.notQueued(taskId, requestId, shared);
        // A send of the same id later replaces its Invalid record (see TaskStore.insert): a caller
        // who chose the id retries with it, as after any 503 (a store of the old contract answers
        // that send 409, saying the task never ran: see existsMessage).
        const chosen = invocation.taskId === undefined ? '' : `: ${taskId} never ran, send it again later`;
        throw new FcAsyncError('ServiceUnavailable', `The task could not be queued${chosen}`, {
          statusCode: 503,
          cause: error,
          retryAfterSeconds: 1,
        });
      }
      // A shared queue holds the task now: whichever instance runs it counts it.
      if (shared) this.finishOne();
      if (this.listeners.size > 0) this.emit({ type: 'accepted', taskId, requestId, delayMs });
      return {
        statusCode: 202,
        headers: { 'x-fc-request-id': requestId, 'x-fc-async-task-id': taskId },
        body: EMPTY,
      };
    } finally {
      if (accepting) this.accepting--;
    }
  }

  /**
   * Resolves when nothing is queued, delayed, running or being delivered. With a shared queue
   * (BullMQ), when this instance runs and delivers nothing: tasks queued in Redis or running
   * on other instances are not waited for.
   */
  drain(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops accepting (new async requests answer 503), lets work finish until `timeoutMs`, then
   * stops what is left: running attempts are aborted and, for a backend that does not persist
   * tasks, every unfinished task is recorded `Stopped` and its onFailure destination called.
   * A persistent backend keeps unfinished tasks for the next start instead.
   *
   * It waits for running attempts, destination calls, the engine's own writes, queued tasks and
   * delayed ones (an `X-Fc-Async-Delay`, a retry's backoff) due before the deadline; as soon as
   * all that is left is delayed tasks due after it, nothing can run meanwhile, and it goes on at
   * once as at the deadline. A shared queue (BullMQ) waits only for this instance's attempts and
   * deliveries: what waits in the queue stays there for the other instances.
   *
   * @example
   * ```ts
   * declare const engine: AsyncEngine;
   * process.once('SIGTERM', () => void engine.close({ timeoutMs: 10_000 }));
   * ```
   */
  async close(options: CloseOptions = {}): Promise<void> {
    const timeoutMs = closeTimeoutMs(options);
    // After the deadline: how long an attempt that ignores its stop is waited for, then the deliveries.
    const stopWithin = options.stopWithinMs;
    const graceMs = stopWithin === undefined ? Math.max(this.options.stopGraceMs, 100) : Math.floor(stopWithin / 2);
    const lastDeliveriesMs = stopWithin === undefined ? STOPPED_DELIVERY_MS : Math.max(stopWithin - graceMs, 0);
    this.closeGraceMs = stopWithin === undefined ? undefined : graceMs;
    this.closing = true;
    this.startWanted();
    // The start under way (a first one, or a try again) ends first, within the close's own bound
    // (the start's bounds it too); no new try starts once closing.
    const begun = performance.now();
    const started = await this.startSettled(timeoutMs);
    // The backend never came up: nothing was accepted, and each failed try released what it opened.
    if (!started) return;
    // What the wait for the start took comes off the bound: close() ends within `timeoutMs` in all.
    const leftMs = Math.max(timeoutMs - (performance.now() - begun), 0);
    // A shared queue leaves what waits to the other instances: this one finishes what it holds.
    this.queue.stopTaking?.();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      // Past 2^31 − 1 ms (Infinity: wait for everything) setTimeout would fire at once.
      timer = setTimeout(() => resolve('timeout'), Math.min(leftMs, MAX_TIMER_MS));
    });
    const parked = this.whenParked(Date.now() + leftMs);
    const result = await Promise.race([this.drain().then(() => 'drained' as const), deadline, parked]);
    clearTimeout(timer);
    this.unwatchParked();
    // 'parked': what is left cannot start before the deadline; it ends as it would at the deadline.
    if (result !== 'drained') {
      if (this.persistent) {
        this.cut = true;
        for (const running of this.running.values()) {
          running.cutByShutdown = true;
          // Its own code: the app can tell it from a stop (the task is not over: it runs again).
          running.abort(new FcAsyncError('ShuttingDown', 'The function is shutting down'));
        }
        // Their end (Retrying, for the next start) is written before the store closes.
        const ending = new Set(this.inFlight);
        await within(Promise.allSettled(ending), graceMs);
        if (this.running.size > 0) {
          // An app that ignores its abort past the grace is left to itself: its attempt ends now, cut
          // (Retrying, for the next start), so that its timeout neither holds the process open nor
          // writes to the closed store later.
          for (const running of this.running.values()) {
            // One that started after the cut above (its claim under way then) is cut all the same.
            running.cutByShutdown = true;
            running.giveUp?.();
          }
          await within(Promise.allSettled(ending), 100);
        }
        // A delivery under way (a task that ended just before the deadline) or one an attempt started
        // as it ended (a task stopped meanwhile goes to onFailure) gets a moment to finish: cut short,
        // it would be made again at the next start to a destination that may well have taken the
        // record already. So does an attempt's end still being written: an app that settled, or a
        // stop whose grace ran out, as the grace above ran out delivers once that write is back (a
        // shared queue's job cut then would wait for its lock to expire before another instance
        // delivered it). A claim still under way is not waited for: its attempt never ran.
        const started = [...this.inFlight].some((job) => !ending.has(job));
        if (started || this.deliveriesUnderWay > 0 || this.endsUnderWay > 0) {
          // The deliveries themselves too: a stop's or a recovery's runs outside any job.
          await within(Promise.allSettled([...this.inFlight, this.deliveriesDone()]), lastDeliveriesMs);
        }
      } else {
        const left = (await this.store.unfinished()).filter((r) => !TERMINAL_STATUSES.has(r.status));
        await Promise.all(left.map((record) => this.stopOnce(record.taskId).catch(() => undefined)));
        // An attempt that ignores its stop is recorded Stopped when the grace runs out; its onFailure
        // call starts then, and gets a moment more before deliveries are cut. So does a task whose
        // write the store refused, or may refuse (a job under way): its job comes back after BOOKKEEPING_RETRY_MS.
        const owed = left.length > 0 || this.unrecorded.size > 0 || this.inFlight.size > 0;
        await within(this.drain(), owed ? graceMs + lastDeliveriesMs : graceMs);
      }
      // A destination still hung or retrying ends now, and takes no new attempt.
      this.shutdown.abort(SHUTTING_DOWN);
    }
    await this.queue.close();
    if (result !== 'drained') {
      // Deliveries just aborted record how they ended before the store closes.
      await within(this.persistent ? Promise.allSettled([...this.inFlight]) : this.drain(), 100);
    }
    await this.store.close?.();
    this.timeouts.idle();
    this.delivery.timeouts.idle();
  }

  /**
   * Whether the start under way when close() began brought the backend up, waited for up to
   * `timeoutMs`. One still under way then is given up: what it makes when it comes is closed and
   * never used (no queue started, nothing recovered), and what waits for the engine gets a 503.
   */
  private async startSettled(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => {
      timer = setTimeout(() => resolve('hung'), Math.min(timeoutMs, MAX_TIMER_MS));
    });
    const outcome = await Promise.race([
      this.ready.then(
        () => true,
        () => false,
      ),
      hung,
    ]);
    clearTimeout(timer);
    if (outcome !== 'hung') return outcome;
    this.startAbandoned = true;
    this.giveUpStart(shutDown());
    return false;
  }

  /**
   * Resolves once all that is left waits in the queue until after `deadlineAt` (see `parked`),
   * looked at a turn after close() starts and after each end of a job, a delivery, a stop or a
   * count. Never, with a shared queue (its waiting jobs are not drain()'s) or a queue that cannot
   * tell when its jobs are due.
   */
  private whenParked(deadlineAt: number): Promise<'parked'> {
    if (this.queue.shared || !this.queue.nextDueAt) return new Promise(() => undefined);
    return new Promise((resolve) => {
      this.parkWatch = { deadlineAt, resolve: () => resolve('parked'), immediate: undefined };
      this.lookIfParked();
    });
  }

  private unwatchParked(): void {
    const watch = this.parkWatch;
    this.parkWatch = undefined;
    if (watch?.immediate !== undefined) clearImmediate(watch.immediate);
  }

  /**
   * While close() waits, looks whether it may stop waiting: a turn later, once the queue has
   * taken the retry a job that just ended asked for, and once for every end of that turn.
   */
  private lookIfParked(): void {
    const watch = this.parkWatch;
    if (watch === undefined || watch.immediate !== undefined) return;
    watch.immediate = setImmediate(() => {
      watch.immediate = undefined;
      if (this.parkWatch === watch && this.parked(watch.deadlineAt)) watch.resolve();
    });
  }

  /**
   * Whether nothing can happen before `deadlineAt`: no job runs or is being processed, no stop is
   * under way, every task not done has a job waiting in the queue (so none is being delivered,
   * accepted or recovered), and the earliest of them is due after `deadlineAt` (with a persistent
   * backend and a deadline at all, after now: it keeps them).
   */
  private parked(deadlineAt: number): boolean {
    const queue = this.queue;
    if (this.inFlight.size > 0 || this.stops.size > 0 || queue.running() > 0) return false;
    if (queue.pending() !== this.outstanding) return false;
    const next = queue.nextDueAt?.();
    if (next === undefined) return false;
    // A persistent backend keeps what waits for the next start: a retry's backoff or a delay is
    // not waited out (a retry that failed because the shutdown was under way, a call to another
    // function that was closing, would use up its retries in the drain).
    return next > deadlineAt || (this.persistent && Number.isFinite(deadlineAt) && next > Date.now());
  }

  /** The record of a task being accepted, with the trace context the `accepted` hook gives it. */
  private newTask(
    taskId: string,
    request: FcRequest,
    invocation: Invocation,
    delayMs: number,
    acceptedByMiddleware: boolean,
  ): TaskRecord {
    const now = Date.now();
    const record: TaskRecord = {
      taskId,
      requestId: invocation.requestId,
      status: 'Enqueued',
      functionArn: this.arnOf(invocation, this.options.functionName),
      qualifier: invocation.qualifier,
      startedTime: now,
      alreadyRetriedTimes: 0,
      events: [{ eventId: 1, status: 'Enqueued', timestamp: now, eventDetail: '' }],
      payload: captureRequest(request, this.deps.redact, acceptedByMiddleware),
      acceptedAt: now,
      attempts: 0,
      dueAt: delayMs > 0 ? now + delayMs : undefined,
    };
    const trace = this.deps.hooks?.accepted?.(record, invocation);
    if (trace?.traceContext) record.traceContext = trace.traceContext;
    if (trace?.traceId) record.traceId = trace.traceId;
    return record;
  }

  /**
   * The 409's message. A task the queue refused (Invalid) never ran: a caller that sent it again
   * after the 503, as callers retry, is told so rather than led to think it was taken (a store
   * that does not replace an Invalid record, see TaskStore.insert, refuses that send).
   */
  private async existsMessage(taskId: string): Promise<string> {
    const exists = `An async task with id ${taskId} already exists`;
    try {
      const store = this.store;
      const known = await (store.peek ? store.peek(taskId) : store.get(taskId));
      return known?.status === 'Invalid' ? `${exists}: it could not be queued and never ran (Invalid)` : exists;
    } catch {
      return exists; // a store away now: the 409 stands, its detail is what cannot be read
    }
  }

  /** A task stored but refused by the queue: recorded `Invalid` (unless it ended meanwhile), its accept answers 503. */
  private async notQueued(taskId: string, requestId: string, shared: boolean): Promise<void> {
    try {
      await this.store.transition(taskId, 'Invalid', {
        from: ['Enqueued'],
        patch: { endTime: Date.now(), taskErrorMessage: 'The task could not be queued' },
      });
    } catch (refused) {
      noteBookkeepingFailure(this.deps.logger, taskId, refused);
    }
    this.notAccepted(taskId, requestId, shared);
  }

  /** Counts a task of a local queue done, unless an end of it was counted already. */
  private countDone(taskId: string, requestId: string): void {
    if (this.firstEnd(taskId, requestId)) this.finishOne();
    this.lookIfParked();
  }

  /**
   * A task of a local queue whose record is gone before it ran (deleted from the store by hand, or
   * a store that answered an insert it did not keep): nothing will end it, so it is counted done
   * here, and said so (drain() waited for it for ever).
   */
  private goneBeforeItRan(taskId: string): void {
    const requestId = this.counted.get(taskId);
    if (requestId === undefined) return;
    this.deps.logger.warn('async task gone from its store before it ran', { taskId, requestId });
    this.countDone(taskId, requestId);
  }

  /**
   * A task whose record its store cannot read (a 500 from `get`: damaged): logged, and with a
   * local queue counted done (drain() waited for it for ever, each try of it failing alike).
   */
  private unreadable(taskId: string, error: FcAsyncError): void {
    this.deps.logger.error('async task cannot be read from its store: it is not run', {
      taskId,
      code: error.code,
      error,
    });
    const requestId = this.counted.get(taskId);
    if (requestId !== undefined && !this.queue.shared) this.countDone(taskId, requestId);
  }

  /**
   * Whether this is the first end of a task of a local queue to be counted (see `counted`): true
   * once, the task then no longer counted; false for every end after it.
   */
  private firstEnd(taskId: string, requestId: string): boolean {
    if (this.counted.get(taskId) === requestId) {
      this.counted.delete(taskId);
      return true;
    }
    return this.countedToo.size > 0 && this.countedToo.delete(`${taskId} ${requestId}`);
  }

  /**
   * An accept that answers an error ends its count; with a local queue, only when no end of its
   * task counted it done already (a stop, when the store took the task yet answered with an error).
   */
  private notAccepted(taskId: string, requestId: string, shared: boolean): void {
    if (shared) this.finishOne();
    else this.countDone(taskId, requestId);
  }

  private finishOne(): void {
    this.outstanding--;
    if (this.outstanding === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /**
   * Requeues what a previous process left unfinished. The store may give the tasks without their
   * request (see `TaskStore.unfinished`): only a destination record needs it, built from the
   * record a transition returns (an interrupted or stopping task's end) or, for a destination
   * call the crash cut short, from the task read with `get` when its call starts; so a start with
   * a backlog of large requests holds none of their bodies.
   */
  private async recover(): Promise<void> {
    const unfinished = await this.store.unfinished();
    const owed: TaskHead[] = [];
    const counted: TaskHead[] = [];
    try {
      await this.recoverEach(unfinished, owed, counted);
    } catch (error) {
      // This start failed: the next try counts these tasks again, from the store.
      for (const record of counted) {
        if (this.counted.get(record.taskId) !== record.requestId) continue;
        this.counted.delete(record.taskId);
        this.outstanding--;
      }
      throw error;
    }
    // Not awaited (destinations must not hold the start up), and `concurrency` at a time.
    const next = owed.values();
    for (let i = Math.min(owed.length, this.options.concurrency); i > 0; i--) void this.deliverOwed(next);
  }

  /** Counts and requeues each unfinished task; those that ended go to `owed`, each counted one to `counted`. */
  private async recoverEach(unfinished: readonly TaskHead[], owed: TaskHead[], counted: TaskHead[]): Promise<void> {
    for (const record of unfinished) {
      this.outstanding++;
      this.counted.set(record.taskId, record.requestId);
      counted.push(record);
      if (TERMINAL_STATUSES.has(record.status)) {
        // It ended, but the crash came before its destination was called.
        owed.push(record);
        continue;
      }
      if (record.status === 'Stopping') {
        const r = await this.store.transition(record.taskId, 'Stopped', {
          from: ['Stopping'],
          patch: this.endPatch(record, 'Stopped', 'The task was stopped'),
        });
        if (r) {
          this.deps.hooks?.endedWithoutAttempt?.(r);
          void this.settle(r, { kind: 'stopped' });
        } else this.countDone(record.taskId, record.requestId);
        continue;
      }
      if (record.status === 'Running' || record.status === 'Dequeued') {
        // The attempt was interrupted by the crash: it counts, and the policy decides what is next.
        // Not awaited: a final failure calls its destination, which must not hold the start up.
        void this.recoverInterrupted(record);
        continue;
      }
      const delay = record.dueAt ? Math.max(0, record.dueAt - Date.now()) : 0;
      await this.queue.enqueue({ taskId: record.taskId }, delay);
    }
  }

  /**
   * Calls the destinations of the tasks `owed` yields (an iterator other senders share), one
   * after another, each task read in full (its request included) only when its turn comes.
   */
  private async deliverOwed(owed: Iterator<TaskHead>): Promise<void> {
    for (let step = owed.next(); step.done !== true; step = owed.next()) {
      const { taskId, requestId } = step.value;
      let record: TaskRecord | undefined;
      try {
        record = await this.store.get(taskId);
      } catch (error) {
        noteBookkeepingFailure(this.deps.logger, taskId, error);
      }
      if (record) await this.settle(record, undefined);
      else this.countDone(taskId, requestId);
    }
  }

  /** Records an attempt a crash cut short (found `Running` on start) and requeues it for a retry. */
  private async recoverInterrupted(record: TaskHead): Promise<void> {
    try {
      const next = await this.afterInterrupted(record);
      if (next.retryInMs !== undefined) await this.queue.enqueue({ taskId: record.taskId }, next.retryInMs);
    } catch (error) {
      // The store refused the write: the task stays Running and is recovered on the next start.
      noteBookkeepingFailure(this.deps.logger, record.taskId, error);
      this.countDone(record.taskId, record.requestId);
    }
    this.lookIfParked();
  }

  private async process(taskId: string): Promise<JobResult> {
    const shared = this.queue.shared === true;
    if (shared) this.outstanding++;
    // A refusal recorded meanwhile, by another job of the id (an earlier task's), is not this job's to clear.
    const refusal = this.unrecorded.size > 0 ? this.unrecorded.get(taskId) : undefined;
    const job = this.attempt(taskId);
    this.inFlight.add(job);
    try {
      const result = await job;
      // Its writes went through, or it found the task past them: a refused one no longer matters.
      if (this.unrecorded.size > 0 && this.unrecorded.get(taskId) === refusal) this.unrecorded.delete(taskId);
      return result;
    } catch (error) {
      if (isFcAsyncError(error) && error.statusCode === 500) {
        // The store answered, but the task itself cannot be read (sqlite's SqliteTaskUnreadable:
        // its row damaged on disk): a later try reads the same. Not run, left as it is.
        this.unreadable(taskId, error);
        return undefined;
      }
      // The store refused a write (a full disk, a lost connection): the task is left Enqueued or
      // Running. It is tried again later, when the store may take writes again.
      noteBookkeepingFailure(this.deps.logger, taskId, error);
      this.unrecorded.set(taskId, this.counted.get(taskId) ?? '');
      return { retryInMs: BOOKKEEPING_RETRY_MS };
    } finally {
      this.inFlight.delete(job);
      if (shared) this.finishOne();
      this.lookIfParked();
    }
  }

  private async attempt(taskId: string): Promise<JobResult> {
    // Past close()'s deadline, a job (an interrupted attempt's retry among them) is left as its
    // task is: for the next start, or for another instance of a shared queue.
    if (this.cut) return this.queue.shared ? { retryInMs: 0 } : undefined;
    const store = this.store;
    // A store's cached copy saves a round trip; the claim below checks the status again.
    const got = store.peek ? store.peek(taskId) : store.get(taskId);
    let current = isPromise(got) ? await got : got;
    let fresh = store.peek === undefined;
    const maxAgeMs = this.config.maxAsyncEventAgeInSeconds * 1000;
    // Skip or expire a task only on a fresh copy: a cached one may be out of date, or even be an
    // earlier task's under the same id, deleted by retention since.
    if (current && !fresh && (!CLAIMABLE.includes(current.status) || Date.now() - current.acceptedAt > maxAgeMs)) {
      current = await store.get(taskId);
      fresh = true;
    }
    if (!current) {
      // It ended and went (maxTasks) after a write of it was refused: its end was not counted here.
      const refused = this.unrecorded.size > 0 ? this.unrecorded.get(taskId) : undefined;
      if (refused) this.countDone(taskId, refused);
      else if (!this.queue.shared) this.goneBeforeItRan(taskId);
      return undefined;
    }
    if (!CLAIMABLE.includes(current.status)) return this.redelivered(current);
    if (Date.now() - current.acceptedAt > maxAgeMs) return this.expire(current);
    // A job ahead of its task (a shared queue's job freed by a lost lock right after the attempt
    // asked for a retry) waits for the backoff or the X-Fc-Async-Delay rather than skip it.
    const early = current.dueAt === undefined ? 0 : current.dueAt - Date.now();
    if (early > EARLY_TOLERANCE_MS) return { retryInMs: early };
    const instanceId = this.deps.instanceId;
    const claiming = store.transition(taskId, 'Running', {
      from: CLAIMABLE,
      via: 'Dequeued',
      patch: (task) => ({
        attempts: task.attempts + 1,
        alreadyRetriedTimes: task.attempts,
        dueAt: undefined,
        // This attempt is now the last one: until it fails, a stop or an expiry has no status to report.
        lastStatusCode: undefined,
        instanceId,
      }),
    });
    const running = new Running();
    const record = isPromise(claiming) ? await this.claimed(taskId, claiming, running) : claiming;
    if (!record) {
      if (fresh) return undefined;
      // The copy was out of date: another instance has the task, or it ended meanwhile.
      const latest = await store.get(taskId);
      return latest && !CLAIMABLE.includes(latest.status) ? this.redelivered(latest) : undefined;
    }
    const attempt = record.attempts - 1;
    this.running.set(taskId, running);
    // Claimed while close() cut the attempts under way (its store read took a round trip): cut too,
    // before its app runs (Retrying, not counted), rather than run it past the deadline.
    if (this.cut) running.cutByShutdown = true;
    if (this.listeners.size > 0) this.emit({ type: 'started', taskId, requestId: record.requestId, attempt });
    const started = Date.now();
    const hooks = this.deps.hooks;
    const outcome = hooks?.attempt
      ? await hooks.attempt(record, attempt, () => this.exec(record, attempt, running))
      : await this.exec(record, attempt, running);
    // Told once the outcome is recorded, before a destination is called (which may take long).
    const recorded = this.attemptTeller(record, attempt, outcome, () => Date.now() - started);
    const written = this.writtenTeller(record, attempt);
    let ended: Awaited<ReturnType<typeof this.afterAttempt>>;
    this.endsUnderWay++;
    try {
      ended = await this.afterAttempt(record, attempt, outcome, running, RAN, recorded, written);
    } catch (error) {
      this.keepUnwrittenEnd(taskId, attempt, outcome, running, Date.now() - started);
      throw error;
    } finally {
      this.endsUnderWay--;
      // A write that threw: its end is kept (see keepUnwrittenEnd) and recorded as it ended later.
      written?.(true);
    }
    const { status, retryInMs } = ended;
    recorded?.(status);
    return retryInMs === undefined ? undefined : { retryInMs };
  }

  /** Ends a waiting task past maxAsyncEventAgeInSeconds `Expired`, without an attempt. */
  private async expire(current: TaskRecord): Promise<undefined> {
    const message = `The event is older than maxAsyncEventAgeInSeconds (${this.config.maxAsyncEventAgeInSeconds} s)`;
    const expired = await this.store.transition(current.taskId, 'Expired', {
      from: ['Enqueued', 'Retrying'],
      patch: this.endPatch(current, 'EventAgeExceeded', message),
      detail: message,
    });
    if (expired) {
      this.deps.hooks?.endedWithoutAttempt?.(expired);
      await this.settleAside(expired, undefined);
    }
    return undefined;
  }

  /** Runs one attempt and tells the tracing hook how it ended. */
  private async exec(record: TaskRecord, attempt: number, running: Running): Promise<AttemptOutcome> {
    const outcome = await this.runAttempt(record, attempt, running);
    this.running.delete(record.taskId);
    const attemptEnded = this.deps.hooks?.attemptEnded;
    if (attemptEnded) {
      const willRetry =
        outcome.kind === 'failure' &&
        (attempt < this.config.maxAsyncRetryAttempts || (running.cutByShutdown && this.persistent));
      attemptEnded.call(this.deps.hooks, record, attempt, outcome, willRetry);
    }
    return outcome;
  }

  /**
   * A job for a task that is not waiting: with a shared queue, an instance died while running
   * or delivering it and the queue handed the job to another (stalled-job recovery). A running
   * attempt counts as interrupted and the retry policy decides; a stopping one ends `Stopped`;
   * a finished one whose destination was not called is delivered.
   */
  private async redelivered(record: TaskRecord): Promise<JobResult> {
    // A stop the store refused yet wrote: its destination is owed (a `running` entry of the task here
    // is only a claim of it, which fails).
    if (this.refusedStops.delete(record.taskId) && TERMINAL_STATUSES.has(record.status)) {
      if (this.owed(record)) await this.settle(record, undefined);
      return undefined;
    }
    // A task whose last write failed (see process) is handled as one a dead instance left.
    const unrecorded = this.unrecorded.delete(record.taskId);
    const unwritten = this.unwrittenEnds.get(record.taskId);
    if ((!this.queue.shared && !unrecorded) || this.running.has(record.taskId)) return undefined;
    if (unwritten && record.status === 'Running' && unwritten.attempt === record.attempts - 1) {
      // The attempt ended here; only its record was refused: record it now, as it ended. Kept until
      // written: a refusal again leaves it for the next job.
      // Told as its attempt line once recorded (the emulator's log, the dashboard), as attempt() tells it.
      const recorded = this.attemptTeller(record, unwritten.attempt, unwritten.outcome, () => unwritten.durationMs);
      const next = await this.afterAttempt(
        record,
        unwritten.attempt,
        unwritten.outcome,
        undefined,
        ['Running'],
        recorded,
      );
      recorded?.(next.status);
      this.unwrittenEnds.delete(record.taskId);
      return next.retryInMs === undefined ? undefined : { retryInMs: next.retryInMs };
    }
    this.unwrittenEnds.delete(record.taskId);
    if (TERMINAL_STATUSES.has(record.status)) {
      if (this.owed(record)) await this.settle(record, undefined);
      return undefined;
    }
    if (record.status === 'Stopping') {
      await this.finishStopped(record, { kind: 'stopped' });
      return undefined;
    }
    const next = await this.afterInterrupted(record);
    return next.retryInMs === undefined ? undefined : { retryInMs: next.retryInMs };
  }

  /**
   * Records an attempt found cut short by a crash (its task `Running` on restart, or a job back
   * from an instance that died), and says so: an app that ends its process (`process.exit`, an
   * out-of-memory kill) leaves no other trace of which task it was running.
   */
  private async afterInterrupted(record: TaskHead): Promise<{ status: AsyncTask['status']; retryInMs?: number }> {
    const attempt = record.attempts - 1;
    this.deps.logger.warn('async attempt interrupted', {
      taskId: record.taskId,
      requestId: record.requestId,
      attempt,
      reason: INTERRUPTED.message,
    });
    const recorded = this.attemptTeller(record, attempt, INTERRUPTED, () => 0);
    // Told before its end is written, whether it was taken after (attemptWritten): a final
    // failure's destination call nests in its span.
    const hooks = this.deps.hooks;
    hooks?.attemptInterrupted?.(record, attempt, INTERRUPTED, attempt < this.config.maxAsyncRetryAttempts);
    const written = hooks?.attemptInterrupted ? this.writtenTeller(record, attempt) : undefined;
    let next: Awaited<ReturnType<typeof this.afterAttempt>>;
    try {
      next = await this.afterAttempt(
        record,
        attempt,
        INTERRUPTED,
        undefined,
        ['Running', 'Dequeued'],
        recorded,
        written,
      );
    } finally {
      // A write that threw: the task stays Running, and is found interrupted again.
      written?.(true);
    }
    // A retry is told here: afterAttempt tells only the ends it records (told once either way).
    recorded?.(next.status);
    return next;
  }

  /** What tells the hooks, once, whether the store took an attempt's end (see `EngineHooks.attemptWritten`). */
  private writtenTeller(record: TaskHead, attempt: number): ((accepted: boolean) => void) | undefined {
    const hooks = this.deps.hooks;
    if (!hooks?.attemptWritten) return undefined;
    let told = false;
    return (accepted) => {
      if (told) return;
      told = true;
      hooks.attemptWritten?.(record, attempt, accepted);
    };
  }

  /**
   * What tells an attempt's `attempt` event, once, with the status recorded (`undefined` with no
   * subscriber: nothing to build).
   */
  private attemptTeller(
    record: Pick<TaskRecord, 'taskId' | 'requestId'>,
    attempt: number,
    outcome: AttemptOutcome,
    durationMs: () => number,
  ): ((status: AsyncTask['status']) => void) | undefined {
    if (this.listeners.size === 0) return undefined;
    let told = false;
    return (status) => {
      if (told) return;
      told = true;
      this.emit({
        type: 'attempt',
        taskId: record.taskId,
        requestId: record.requestId,
        attempt,
        outcome: outcome.kind,
        durationMs: durationMs(),
        status,
      });
    };
  }

  /** Keeps an attempt's outcome whose end the store refused (see unwrittenEnds); a stop's or a shutdown's cut is not kept. */
  private keepUnwrittenEnd(
    taskId: string,
    attempt: number,
    outcome: AttemptOutcome,
    running: Running,
    durationMs: number,
  ): void {
    if (outcome.kind === 'stopped' || running.cutByShutdown) return;
    this.unwrittenEnds.delete(taskId);
    this.unwrittenEnds.set(taskId, { attempt, outcome, durationMs });
    if (this.unwrittenEnds.size > MAX_UNWRITTEN_ENDS) {
      this.unwrittenEnds.delete(this.unwrittenEnds.keys().next().value as string);
    }
  }

  /**
   * Whether a finished task's settle may still be owed: its destination was not called, or (a
   * local queue) its end may not be counted done, its answer lost with no destination to call;
   * a local queue's settle tells that itself (see `firstEnd`).
   */
  private owed(record: TaskRecord): boolean {
    return record.deliveryPending === true || this.queue.shared !== true;
  }

  /**
   * Waits for a claim the store answers later, the attempt known meanwhile: a stop that finds the
   * task Running before the answer is back reaches it (and the app is then not called).
   */
  private async claimed(
    taskId: string,
    claiming: Promise<TaskRecord | undefined>,
    running: Running,
  ): Promise<TaskRecord | undefined> {
    const own = !this.running.has(taskId);
    if (own) this.running.set(taskId, running);
    let record: TaskRecord | undefined;
    try {
      record = await claiming;
    } finally {
      if (own && !record) this.running.delete(taskId);
    }
    return record;
  }

  private runAttempt(record: TaskRecord, attempt: number, running: Running): Promise<AttemptOutcome> {
    // Stopped while its claim was being written (see `claimed`): the app is not called.
    if (running.stopRequested) return Promise.resolve({ kind: 'stopped' });
    if (running.cutByShutdown) return Promise.resolve(SHUTDOWN_CUT);
    const request = replayRequest(record.payload, { requestId: record.requestId, taskId: record.taskId, attempt });
    const invocation = replayInvocation(
      record,
      attempt,
      running,
      this.deps.instanceId,
      this.options.timeoutSeconds,
      request.headers,
      this.deps.env,
    );
    const isFailure = this.options.isFailure;
    return new Promise<AttemptOutcome>((resolve) => {
      let settled = false;
      let lastResponse: BridgeResponse | undefined;
      let grace: NodeJS.Timeout | undefined;
      const done = (outcome: AttemptOutcome) => {
        if (settled) return;
        settled = true;
        timeout.clear();
        if (grace) clearTimeout(grace);
        // An app still writing (it ignored the abort) writes to no one now: its response is let go of.
        abandonRun(invocation);
        resolve(running.stopRequested ? { kind: 'stopped', response: lastResponse } : outcome);
      };
      const timedOut = () => {
        const message = `The attempt timed out after ${this.options.timeoutSeconds} s`;
        running.abort(new FcAsyncError('InvocationError', message));
        done({ kind: 'failure', condition: 'InvocationError', message, errorType: 'TimeoutError' });
      };
      const timeout = this.timeouts.add(timedOut);
      const startedAt = Date.now();
      running.onStop = () => {
        // A stop in the turn the answer came in: the attempt is over, no grace to wait out.
        if (!settled)
          grace = setTimeout(() => done({ kind: 'stopped' }), this.closeGraceMs ?? this.options.stopGraceMs);
      };
      running.giveUp = () => {
        if (!settled) running.abandoned = true;
        done(SHUTDOWN_CUT);
      };
      let pending: Promise<BridgeResponse>;
      expectAbandon(invocation);
      try {
        pending = this.deps.run(request, invocation, record.payload.acceptedByMiddleware === true);
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        (answer) => {
          const response = answerAsSent(request.method, answer);
          lastResponse = response;
          // Past its timeout without yielding (a CPU-bound handler): its timer could not fire before
          // the answer, and FC would have ended the attempt.
          if (Date.now() - startedAt > this.options.timeoutSeconds * 1000) {
            timedOut();
            return;
          }
          let failed: boolean;
          try {
            failed = isFailure(response);
          } catch (error) {
            // The user's own isFailure threw: the attempt failed (platform mode does the same).
            this.deps.logger.error('async.isFailure threw', { taskId: record.taskId, attempt, error });
            done(unhandled(error));
            return;
          }
          done(failed ? failedResponse(response) : { kind: 'success', response });
        },
        (error: unknown) => {
          // What a sync call's failure logs ('invocation failed'), for an attempt: the stack goes to the log.
          // An attempt stopped, timed out or cut ends on its abort however the app words it (a
          // custom runtime's proxy answers CAConnectionFailed): no failure of its own to log.
          if (running.aborted || isInvocationAbort(error, invocation)) {
            this.deps.logger.info('async attempt ended on its abort', { taskId: record.taskId, attempt });
          } else if (!appErrorLogged(error)) {
            // Unless the adapter logged it already (then destroyed the response with it).
            this.deps.logger.error('async attempt failed', {
              taskId: record.taskId,
              requestId: record.requestId,
              attempt,
              error: thrownError(error),
            });
          }
          done(unhandled(error));
        },
      );
    });
  }

  /**
   * Records an attempt's outcome: success, a retry, a final failure or a stop. Returns the
   * status and, for a retry, the delay after which the queue should run the next attempt.
   */
  private async afterAttempt(
    record: TaskHead,
    attempt: number,
    outcome: AttemptOutcome,
    running: Running | undefined,
    from: readonly AsyncTask['status'][] = RAN,
    recorded?: (status: AsyncTask['status']) => void,
    written?: (accepted: boolean) => void,
  ): Promise<{ status: AsyncTask['status']; retryInMs?: number }> {
    const store = this.store;
    const taskId = record.taskId;
    // Every write names this attempt: a newer one (another instance took the task over) owns the task.
    const attempts = attempt + 1;
    if (outcome.kind === 'stopped' || running?.stopRequested) {
      return {
        status: await this.finishStopped(
          record,
          outcome.kind === 'stopped' ? outcome : { kind: 'stopped' },
          attempts,
          recorded,
          outcome.kind === 'stopped',
          written,
        ),
      };
    }
    if (running?.cutByShutdown && this.persistent) {
      // Cut short by a graceful shutdown: neither failed nor done, whatever the app answered to the
      // abort (a partial result is no success); not counted, and the next start (or another
      // instance of a shared queue) runs it again under the same number. One whose app ignored its
      // abort may still run in this process: a shared queue holds it back for a while (see
      // QueueDriver.abandonedRetryDelayMs), so that no other instance runs it alongside.
      const holdMs = running.abandoned ? (this.queue.abandonedRetryDelayMs ?? 0) : 0;
      const retrying = await store.transition(taskId, 'Retrying', {
        from,
        attempts,
        patch: { dueAt: Date.now() + holdMs, attempts: attempt, alreadyRetriedTimes: Math.max(0, attempt - 1) },
        detail: 'interrupted by shutdown',
      });
      written?.(Boolean(retrying));
      return { status: 'Retrying', retryInMs: holdMs };
    }
    if (outcome.kind === 'success') {
      const succeeding = store.transition(taskId, 'Succeeded', {
        from,
        attempts,
        patch: this.endPatch(record, '', undefined, returnPayload(outcome.response), outcome),
      });
      const done = isPromise(succeeding) ? await succeeding : succeeding;
      if (done) {
        recorded?.('Succeeded');
        written?.(true);
        // A local queue's settle runs aside (nothing to wait for): no turn of the microtask queue spent.
        const settling = this.settleAside(done, outcome);
        if (settling) await settling;
        return SUCCEEDED;
      }
      return {
        status: await this.finishStopped(
          record,
          { kind: 'stopped', response: outcome.response },
          attempts,
          recorded,
          false,
          written,
        ),
      };
    }
    const log = {
      taskId,
      requestId: record.requestId,
      attempt,
      condition: outcome.condition,
      reason: outcome.message,
    };
    if (attempt < this.config.maxAsyncRetryAttempts) {
      const delay = backoffDelay(attempt + 1, this.options.backoff);
      const retrying = await store.transition(taskId, 'Retrying', {
        from,
        attempts,
        patch: { dueAt: Date.now() + delay, taskErrorMessage: outcome.message, lastStatusCode: attemptStatus(outcome) },
        detail: outcome.message,
      });
      if (retrying) {
        written?.(true);
        this.deps.logger.debug('async attempt failed; retrying', { ...log, delayMs: delay });
        return { status: 'Retrying', retryInMs: delay };
      }
      return { status: await this.finishStopped(record, { kind: 'stopped' }, attempts, recorded, false, written) };
    }
    const failed = await store.transition(taskId, 'Failed', {
      from,
      attempts,
      patch: this.endPatch(record, outcome.condition, outcome.message, undefined, outcome),
      detail: outcome.message,
    });
    if (failed) {
      this.deps.logger.debug('async task failed', log);
      recorded?.('Failed');
      written?.(true);
      await this.settleAside(failed, outcome);
      return { status: 'Failed' };
    }
    return { status: await this.finishStopped(record, { kind: 'stopped' }, attempts, recorded, false, written) };
  }

  /**
   * The fields a task ends with; `deliveryPending` when a destination is to be called. `attempt`:
   * how the attempt it ends with went, when it ran: with a delivery pending, its status (and a
   * failure's error type) are kept for a record sent again after a crash, which has no response of
   * its own, and its span's trace context (`deliveryTraceContext`, from the tracing hooks). Written
   * out rather than spread: V8 builds `{ ...a, more }` on a slow path.
   */
  private endPatch(
    record: TaskHead,
    condition: DestinationCondition,
    message: string | undefined,
    payload?: string,
    attempt?: AttemptOutcome,
  ): TaskPatch {
    const targets = this.config.destinations[condition === '' ? 'onSuccess' : 'onFailure'];
    const deliveryPending = targets !== undefined && !(Array.isArray(targets) && targets.length === 0);
    const endTime = Date.now();
    const durationMs = endTime - (record.startedTime ?? record.acceptedAt);
    const patch: TaskPatch = {
      endTime,
      durationMs,
      condition,
      taskErrorMessage: message,
      dueAt: undefined,
      deliveryPending: deliveryPending || undefined,
    };
    if (payload !== undefined) patch.returnPayload = payload;
    if (deliveryPending && attempt !== undefined && this.deps.hooks?.deliveryContext) {
      const carrier = this.deps.hooks.deliveryContext(record);
      if (carrier !== undefined) patch.deliveryTraceContext = carrier;
    }
    if (deliveryPending && attempt?.kind === 'success') patch.lastStatusCode = attempt.response.statusCode;
    else if (deliveryPending && attempt?.kind === 'failure') {
      patch.lastStatusCode = attemptStatus(attempt);
      patch.lastErrorType = attempt.errorType;
    }
    return patch;
  }

  /**
   * Ends a stopped task; `attempts` names the attempt that ends it, when one does. `toldStopped`:
   * that attempt's outcome, as the tracing hooks were told it, was the stop. `written`: tells
   * whether that outcome is the one the store took (see `EngineHooks.attemptWritten`).
   */
  private async finishStopped(
    record: TaskHead,
    outcome: AttemptOutcome,
    attempts?: number,
    recorded?: (status: AsyncTask['status']) => void,
    toldStopped = false,
    written?: (accepted: boolean) => void,
  ): Promise<AsyncTask['status']> {
    const stopped = await this.store.transition(record.taskId, 'Stopped', {
      from: ['Running', 'Stopping', 'Dequeued'],
      attempts,
      // The attempt the stop ended, when it told so: its span's trace context is kept for a delivery
      // made again after a crash (see `EngineHooks.deliveryContext`), as a success's or failure's is.
      patch: this.endPatch(record, 'Stopped', 'The task was stopped', undefined, toldStopped ? outcome : undefined),
    });
    // The attempt's end is taken only when it was the stop; another outcome gave way to it.
    written?.(Boolean(stopped) && toldStopped);
    if (stopped) {
      recorded?.('Stopped');
      // No attempt span tells this end: no attempt ends it (a task found stopping, its attempt's
      // process gone), or its attempt ended otherwise as the stop was written (another instance's).
      if (!toldStopped) this.deps.hooks?.endedWithoutAttempt?.(stopped);
      await this.settleAside(stopped, outcome);
      return 'Stopped';
    }
    // Refused: a newer attempt (another instance took the task over) or an end written meanwhile
    // owns the task. Whoever listens is told the status it has, not a stop that did not happen.
    const now = await this.store.get(record.taskId);
    if (now) return now.status;
    // Gone from the store (Redis restarted empty): no stop happened either. Counted done, as no end
    // will be (drain() and close() waited for it).
    this.deps.logger.warn('the async task is gone from the store: its end is not recorded', {
      taskId: record.taskId,
      requestId: record.requestId,
    });
    this.countDone(record.taskId, record.requestId);
    return 'Invalid';
  }

  /**
   * {@link settle}, outside the queue's slot with a local queue: FC's destination calls take none of
   * the function's concurrency, and a slow or dead destination (a webhook retried for a minute) must
   * not hold back the tasks behind it. Counted in `inFlight` as a job is, so that close() waits for
   * it alike, and against `maxQueuedTasks` as a waiting task is, so that a dead destination cannot
   * pile them up; with a shared queue the job stays until the delivery is done (it carries what is owed).
   */
  private settleAside(record: TaskRecord, outcome: AttemptOutcome | undefined): void | Promise<void> {
    if (this.queue.shared) return this.settle(record, outcome);
    // Nothing to call nor to write (no destination for its side, none owed): settled here, in the
    // same turn, as settle() would; without its promise, the two reactions on it and the inFlight entry.
    if (record.deliveryPending !== true && noTargets(this.config.destinations[sideOf(record)])) {
      this.settledBare(record);
      return;
    }
    this.deliveringAside++;
    const bytes = deliveryBytes(record, outcome);
    this.deliveringBytes += bytes;
    const tracked = this.settle(record, outcome, bytes).then(() => undefined);
    this.inFlight.add(tracked);
    void tracked.then(() => {
      this.inFlight.delete(tracked);
      this.lookIfParked();
    });
  }

  /**
   * Calls the destination of a finished task, records the delivery, and counts the task done.
   * `aside`: the bytes of a delivery outside the queue's slots (see `settleAside`), counted until it ends.
   */
  private async settle(record: TaskRecord, outcome: AttemptOutcome | undefined, aside?: number): Promise<void> {
    // With a local queue the task was counted when accepted; with a shared one, each settle counts.
    if (this.queue.shared) this.outstanding++;
    // Counted done already: another settle of it (under way, or its last write refused) calls its destination.
    else if (!this.firstEnd(record.taskId, record.requestId)) {
      if (aside !== undefined) this.deliveredAside(aside);
      return;
    }
    // Its stop was refused but the task ran (or ended) all the same: nothing to look at again.
    if (this.refusedStops.size > 0) this.refusedStops.delete(record.taskId);
    try {
      const condition = record.condition ?? '';
      if (this.listeners.size > 0) this.emitFinished(record);
      const side = condition === '' ? 'onSuccess' : 'onFailure';
      const targets = this.config.destinations[side];
      if (noTargets(targets)) {
        if (record.deliveryPending)
          await this.store.update(record.taskId, { deliveryPending: undefined, deliveryTraceContext: undefined });
        return;
      }
      const destinationRecord = buildDestinationRecord(record, condition, outcome);
      const hooks = this.deps.hooks;
      // Those that took it before a shutdown cut the delivery short are not called again.
      const all = destinationList(targets);
      const places = all.map((_, place) => place).filter((place) => !record.deliveredTo?.includes(place));
      const owed = record.deliveredTo ? places.map((place) => all[place] as Destination) : targets;
      const list = wrapDestinations(owed, record, side, condition, hooks);
      let result: DeliveryResult;
      this.deliveriesUnderWay++;
      this.delivering.set(record.taskId, side);
      try {
        result = hooks?.delivery
          ? await hooks.delivery(record, side, condition, () => deliverResolved(list, destinationRecord, this.delivery))
          : await deliverResolved(list, destinationRecord, this.delivery);
      } finally {
        this.delivering.delete(record.taskId);
        if (--this.deliveriesUnderWay === 0) for (const resolve of this.deliveryWaiters.splice(0)) resolve();
      }
      // Cut short by close(): a persistent backend delivers it again on the next start, to the
      // destinations that did not take it yet.
      const cutShort = result.status === 'Failed' && this.shutdown.signal.aborted;
      if (cutShort && this.persistent && record.deliveryPending) {
        const took = places.filter((_, i) => result.destinations[i]?.status === 'Succeeded');
        const deliveredTo = [...(record.deliveredTo ?? []), ...took];
        if (took.length > 0) {
          const noting = this.store.update(record.taskId, { deliveredTo });
          if (isPromise(noting)) await noting;
        }
        this.deps.logger.info('destination delivery owed: the next start makes it', { taskId: record.taskId });
        return;
      }
      const updating = this.store.update(record.taskId, {
        destinationStatus: result.status,
        deliveryPending: undefined,
        deliveredTo: undefined,
        deliveryTraceContext: undefined,
      });
      if (isPromise(updating)) await updating;
      if (this.listeners.size > 0) {
        this.emit({
          type: 'delivered',
          taskId: record.taskId,
          requestId: record.requestId,
          destinationStatus: result.status,
          side,
          destinations: result.destinations,
        });
      }
    } catch (error) {
      this.deps.logger.error('destination bookkeeping failed', { taskId: record.taskId, error });
    } finally {
      // Before the count that resolves drain(): a caller that waited for it finds room at once.
      if (aside !== undefined) this.deliveredAside(aside);
      this.finishOne();
      this.lookIfParked();
    }
  }

  /**
   * {@link settle} of a local queue's task with no destination to call and none owed: counts it done
   * (once) and tells `finished`, synchronously.
   */
  private settledBare(record: TaskRecord): void {
    if (!this.firstEnd(record.taskId, record.requestId)) return;
    if (this.refusedStops.size > 0) this.refusedStops.delete(record.taskId);
    if (this.listeners.size > 0) this.emitFinished(record);
    this.finishOne();
    this.lookIfParked();
  }

  /** Tells the engine's listeners that a task ended, once per task (the callers count it first). */
  private emitFinished(record: TaskRecord): void {
    this.emit({
      type: 'finished',
      taskId: record.taskId,
      requestId: record.requestId,
      status: record.status,
      condition: record.condition ?? '',
      attempts: record.attempts,
    });
  }

  /** A delivery outside the queue's slots ended: its count and its bytes freed. */
  private deliveredAside(bytes: number): void {
    this.deliveringAside--;
    this.deliveringBytes -= bytes;
  }

  /** Resolves once no destination call is under way. */
  private deliveriesDone(): Promise<void> {
    if (this.deliveriesUnderWay === 0) return Promise.resolve();
    return new Promise((resolve) => this.deliveryWaiters.push(resolve));
  }

  private async getTask(taskId: string): Promise<AsyncTask | undefined> {
    checkTaskId(taskId);
    if (!this.isReady) await this.backendReady();
    const store = this.store;
    const record = await (store.getCommitted ? store.getCommitted(taskId) : store.get(taskId));
    return record && toAsyncTask(record, true);
  }

  private async listTasks(query: TaskQuery = {}): Promise<TaskPage> {
    const normalised = normaliseQuery(query);
    if (!this.isReady) await this.backendReady();
    const page = await this.store.list(normalised);
    return {
      tasks: page.tasks.map((r) => toAsyncTask(r, normalised.includePayload === true)),
      nextToken: page.nextToken,
    };
  }

  /**
   * Tells the other instances (distributed stores) that `taskId` should stop. When that fails, the
   * error is thrown if the stop rests on it (`needed`: no attempt of the task runs here, and this
   * is its first ask), else logged: the task is `Stopping` and a later ask tells them again.
   */
  private async tellStop(taskId: string, needed: boolean): Promise<void> {
    try {
      await this.store.requestStop?.(taskId);
    } catch (error) {
      if (needed) throw error;
      this.deps.logger.warn('async stop not told to other instances', { taskId, error });
    }
  }

  /**
   * Stops the attempts running here whose task is `Stopping` in the store: after stop requests
   * may have been missed. A read that fails leaves its attempt running (the next stop asks again).
   */
  private async stopThoseStopping(): Promise<void> {
    for (const taskId of [...this.running.keys()]) {
      try {
        const record = await this.store.get(taskId);
        if (record?.status === 'Stopping') this.stopLocal(taskId);
      } catch {}
    }
  }

  private stopLocal(taskId: string): void {
    const running = this.running.get(taskId);
    if (!running || running.stopRequested) return;
    running.stopRequested = true;
    running.abort(new FcAsyncError('Stopped', 'The task was stopped'));
    running.onStop?.();
  }

  /** One stop of a task at a time: a stop whose write the store refused can tell whose its end is. */
  private stopOnce(taskId: string): Promise<AsyncTask> {
    const before = this.stops.get(taskId);
    const stop = before
      ? before.then(
          () => this.stopTask(taskId),
          () => this.stopTask(taskId),
        )
      : this.stopTask(taskId);
    this.stops.set(taskId, stop);
    const forget = () => {
      if (this.stops.get(taskId) === stop) this.stops.delete(taskId);
      this.lookIfParked();
    };
    stop.then(forget, forget);
    return stop;
  }

  /**
   * After the store refused a queued task's stop, which may be written all the same (its answer
   * lost): when the task is Stopped now, the stop was (no other stop of it runs here meanwhile:
   * see stopOnce), and it ends as one. Else the job the stop took out goes back. Without an answer
   * to that read either, a job comes back to look again (see redelivered).
   */
  private async afterRefusedStop(record: TaskRecord, cancelled: boolean): Promise<AsyncTask | undefined> {
    const taskId = record.taskId;
    let now: TaskRecord | undefined;
    try {
      now = await this.writtenAfterAll(record, 'Stopped');
    } catch {
      this.refusedStops.add(taskId);
      await this.queue.enqueue({ taskId }, 0);
      return undefined;
    }
    if (now) {
      this.deps.hooks?.endedWithoutAttempt?.(now);
      void this.settle(now, { kind: 'stopped' });
      return toAsyncTask(now, false);
    }
    if (cancelled) await this.queue.enqueue({ taskId }, 0);
    return undefined;
  }

  /**
   * After the store refused a running task's Stopping, which may be written all the same: when
   * the task is Stopping now, the stop was, and goes on as one. Else the refusal is thrown; without
   * an answer to that read either, an attempt running here is aborted all the same (it ends
   * Stopped): the stop may be written, and an attempt must not outlive its stop.
   */
  private async afterRefusedStopping(record: TaskRecord, error: unknown): Promise<TaskRecord> {
    let now: TaskRecord | undefined;
    try {
      now = await this.writtenAfterAll(record, 'Stopping');
    } catch {
      this.stopLocal(record.taskId);
      throw error;
    }
    if (now) return now;
    throw error;
  }

  /**
   * The task read again after the store refused to move it to `status`: the record when the move
   * was written all the same (its answer lost), else `undefined`. Throws when the read fails too.
   */
  private async writtenAfterAll(record: TaskRecord, status: AsyncTask['status']): Promise<TaskRecord | undefined> {
    const now = await this.store.get(record.taskId);
    return now?.requestId === record.requestId && now.status === status ? now : undefined;
  }

  private async stopTask(taskId: string): Promise<AsyncTask> {
    checkTaskId(taskId);
    if (!this.isReady) await this.backendReady();
    for (let tries = 0; tries < 3; tries++) {
      const record = await this.store.get(taskId);
      if (!record) throw new FcAsyncError('AsyncTaskNotFound', `No async task with id ${taskId}`, { statusCode: 404 });
      if (TERMINAL_STATUSES.has(record.status)) {
        throw new FcAsyncError(
          'AsyncTaskAlreadyFinished',
          `The async task ${taskId} already ended (${record.status})`,
          {
            statusCode: 400,
          },
        );
      }
      if (record.status === 'Stopping') {
        // Asked again: the first request may not have reached the instance that runs it (a stop
        // of a distributed store travels on a channel that drops what it carries while it is down).
        this.stopLocal(taskId);
        await this.tellStop(taskId, false);
        return toAsyncTask(record, false);
      }
      if (record.status === 'Running') {
        let stopping: TaskRecord | undefined;
        try {
          stopping = await this.store.transition(taskId, 'Stopping', { from: ['Running'] });
        } catch (error) {
          stopping = await this.afterRefusedStopping(record, error);
        }
        if (!stopping) continue;
        if (this.listeners.size > 0) this.emit({ type: 'stopping', taskId, requestId: stopping.requestId });
        // Told to the other instances even when an attempt runs here: after a lost lock, another
        // instance may run a newer attempt of the task while this one still runs its outdated one.
        const here = this.running.has(taskId);
        this.stopLocal(taskId);
        await this.tellStop(taskId, !here);
        return toAsyncTask(stopping, false);
      }
      const cancelled = await this.queue.cancel(taskId);
      const patch = this.endPatch(record, 'Stopped', 'The task was stopped');
      // This instance calls the destination. A shared queue keeps no job to call it again after a
      // crash, and a job taken just before the stop, or added by a 409 since, must not call it twice.
      if (this.queue.shared) patch.deliveryPending = undefined;
      let stopped: TaskRecord | undefined;
      try {
        stopped = await this.store.transition(taskId, 'Stopped', {
          from: ['Enqueued', 'Retrying', 'Dequeued'],
          patch,
        });
      } catch (error) {
        const ended = await this.afterRefusedStop(record, cancelled);
        if (ended) return ended;
        throw error;
      }
      if (!stopped) {
        // It changed since it was read (a claim written but refused an answer, waiting to be tried
        // again): the job taken out is still its own.
        if (cancelled) await this.queue.enqueue({ taskId }, 0);
        continue;
      }
      this.deps.hooks?.endedWithoutAttempt?.(stopped);
      const view = toAsyncTask(stopped, false);
      void this.settle(stopped, { kind: 'stopped' });
      return view;
    }
    throw new FcAsyncError('ConcurrentUpdate', `The async task ${taskId} changed while stopping it; try again`, {
      statusCode: 409,
    });
  }
}

const EMPTY = Buffer.alloc(0);

/** A task as `TaskStore.unfinished` may give it: without its request. */
type TaskHead = Omit<TaskRecord, 'payload'>;

/** What close() waits with: its deadline, and the look after an end, at most one at a time. */
interface ParkWatch {
  readonly deadlineAt: number;
  readonly resolve: () => void;
  immediate: NodeJS.Immediate | undefined;
}

const SUCCEEDED = Object.freeze({ status: 'Succeeded' as const });

/** Statuses an attempt may start from. */
const CLAIMABLE: readonly AsyncTask['status'][] = ['Enqueued', 'Retrying'];
/** How far ahead of its due time a job may run (timers and clocks of instances differ a little). */
const EARLY_TOLERANCE_MS = 50;
/** What an attempt that ran moves from. */
const RAN: readonly AsyncTask['status'][] = ['Running'];

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/** `queue.enqueue` called now, its throw (a sync queue refusing) turned into a rejection. */
function enqueueNow(queue: QueueDriver, taskId: string, delayMs: number): Promise<void> {
  try {
    return Promise.resolve(queue.enqueue({ taskId }, delayMs));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The destinations of one delivery, each wrapped by the `destination` hook when there is one. */
export function wrapDestinations(
  targets: Destination | readonly Destination[] | undefined,
  task: TaskRecord,
  side: 'onSuccess' | 'onFailure',
  condition: DestinationCondition,
  hooks: EngineHooks | undefined,
  parent?: Context,
): Destination | readonly Destination[] | undefined {
  const wrap = hooks?.destination;
  if (!wrap || targets === undefined) return targets;
  const list = Array.isArray(targets) ? targets : [targets as Destination];
  return list.map((d) => wrap.call(hooks, task, side, condition, d, parent));
}

/**
 * A backend's first start. A `create()` that throws at once with a `TypeError` or `RangeError` (a
 * bad option) throws here, so the handler is not made; any other error (a task file another
 * process holds, a server that refuses the connection) fails the start as a rejection does: it is
 * logged, requests answer 503 and a later one tries again (see async.md, *A backend that does not
 * start*).
 */
function firstCreate(backend: AsyncBackend, context: Parameters<AsyncBackend['create']>[0]) {
  try {
    return Promise.resolve(backend.create(context));
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    return Promise.reject(error);
  }
}

/** What waits for an engine closed while its backend was starting gets. */
const shutDown = () =>
  new FcAsyncError('ServiceUnavailable', 'The function is shutting down and accepts no new async requests', {
    statusCode: 503,
    retryAfterSeconds: 1,
  });

/** The outcome of an attempt cut short by a crash (found `Running` on restart or redelivery). */
const INTERRUPTED: AttemptOutcome & { kind: 'failure' } = {
  kind: 'failure',
  condition: 'InvocationError',
  message: 'The attempt was interrupted: its process ended (or was held up past its lock) before the attempt did',
  errorType: 'Interrupted',
};

/** Waits for `promise` or `ms`, whichever ends first; the timer never outlives the wait (the process can exit). */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** `tasks.get` and `tasks.stop` take a task id string; anything else is a caller's mistake, not "not found". */
function checkTaskId(taskId: unknown): void {
  if (typeof taskId !== 'string') {
    const got = taskId === null ? 'null' : Array.isArray(taskId) ? 'array' : typeof taskId;
    throw new TypeError(`Expected \`taskId\` to be a string, got \`${got}\``);
  }
}

/** How long a task waits after the store refused one of its writes, ms. */
const BOOKKEEPING_RETRY_MS = 1000;
/** Outcomes of attempts whose end the store refused, kept for the task's next job (each holds its answer). */
const MAX_UNWRITTEN_ENDS = 1000;

const WHOLE_NUMBER = /^\d+$/;

/** `x-fc-async-delay`: whole seconds, 0 < N < 3600. */
function parseDelay(value: string | string[] | undefined): number {
  if (value === undefined) return 0;
  const raw = Array.isArray(value) ? (value[0] ?? '') : value;
  const text = raw.trim();
  const seconds = Number(text);
  if (!WHOLE_NUMBER.test(text) || seconds <= 0 || seconds >= 3600) {
    throw badRequest(
      'InvalidArgument',
      `x-fc-async-delay must be a whole number of seconds above 0 and below 3600, got "${raw.slice(0, 32)}"`,
    );
  }
  return seconds * 1000;
}

/**
 * The `timeoutMs` of `close(options)`, 30 s by default; a TypeError for options that are not
 * `{ timeoutMs? }` with a number from 0 (callers that remember their close check first with it).
 *
 * @example
 * ```ts
 * closeTimeoutMs({ timeout: 5000 }); // TypeError: Unknown close() option `timeout`
 * ```
 */
export function closeTimeoutMs(options: CloseOptions = {}): number {
  // `undefined` takes the default; anything else (null included) must be a number from 0.
  const { timeoutMs = 30_000, stopWithinMs } = objectOption('options', options, 'close()', [
    'timeoutMs',
    'stopWithinMs',
  ]) as { timeoutMs?: unknown; stopWithinMs?: unknown };
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
    throw new TypeError(`Expected \`timeoutMs\` to be a number from 0 and up, got \`${String(timeoutMs)}\``);
  }
  if (
    stopWithinMs !== undefined &&
    !(typeof stopWithinMs === 'number' && Number.isFinite(stopWithinMs) && stopWithinMs >= 0)
  ) {
    throw new TypeError(
      `Expected \`stopWithinMs\` to be a finite number from 0 and up, got \`${String(stopWithinMs)}\``,
    );
  }
  return timeoutMs;
}

/**
 * What `close()` takes.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * const options: CloseOptions = { timeoutMs: 10_000, stopWithinMs: 2_000 };
 * process.once('SIGTERM', () => void handler.close(options));
 * ```
 */
export interface CloseOptions {
  /** How long running and queued work may go on before what is left is stopped (default 30 s). */
  timeoutMs?: number | undefined;
  /**
   * About how long close may take after that deadline: the wait for attempts that ignore their
   * stop and for the last destination calls share it (closing the store and the queue comes on
   * top: a few milliseconds, up to 3 s for BullMQ's worker when Redis is away). Default:
   * `async.stopGraceMs` plus 2 s. A custom runtime's pre-stop sets it to a fifth of its budget,
   * so that close fits FC's pre-stop budget.
   */
  stopWithinMs?: number | undefined;
}

/** Bodies read for an FC-style error: larger ones are no function error's `{ errorMessage }`. */
const ERROR_BODY_CAP = 64 * 1024;

/**
 * A 429's words when `maxQueuedTasks` is reached: how many of the waiting are tasks still to run and
 * how many are finished tasks whose destination is being called, as a webhook that is down fills
 * the room with deliveries while the task list shows every task Succeeded.
 */
function throttledMessage(max: number, toRun: number, delivering: number): string {
  const deliveries = `${delivering} destination ${delivering === 1 ? 'delivery' : 'deliveries'} under way`;
  const why = delivering > 0 ? ' (a destination that is down holds its tasks until its retries end)' : '';
  return `${toRun + delivering} async tasks are already waiting (maxQueuedTasks ${max}): ${toRun} to run and ${deliveries}${why}; retry later`;
}

/**
 * About what a destination call holds while it waits or retries: the task's request, its answer
 * and the record made of them (the answer's text in it, about twice its bytes).
 */
function deliveryBytes(record: TaskRecord, outcome: AttemptOutcome | undefined): number {
  const response = outcome && 'response' in outcome ? outcome.response : undefined;
  const answer = response ? response.body.length : (record.returnPayload?.length ?? 0);
  return record.payload.body.length + 3 * answer;
}

/** An attempt whose app (or `isFailure`) threw or rejected. */
export function unhandled(error: unknown): Extract<AttemptOutcome, { kind: 'failure' }> {
  const { message, name } = thrownText(error);
  // Cut as a function's `{ errorMessage, errorType }` answer is: an app's error class may name itself at length.
  return {
    kind: 'failure',
    condition: 'UnhandledInvocationError',
    message: cutErrorText(message),
    errorType: cutErrorText(name),
  };
}

/** An attempt a shutdown ended while its app ignored the abort (recorded as cut, see afterAttempt). */
const SHUTDOWN_CUT: AttemptOutcome = Object.freeze({
  kind: 'failure',
  condition: 'InvocationError',
  message: 'The function is shutting down',
  errorType: 'ShuttingDown',
});

/**
 * The outcome of an attempt whose response counts as a failure. An FC function error's body
 * (`{ errorMessage, errorType }`, what FC's runtimes answer for a handler that threw, and the
 * emulator for a built-in runtime) gives the task its message and type; any other body, the
 * HTTP status.
 */
export function failedResponse(response: BridgeResponse): Extract<AttemptOutcome, { kind: 'failure' }> {
  const status = response.statusCode;
  // A status that is no error itself failed by the custom runtime's failure header: said so.
  const marked = status < 500 && hasFcFailureStatus(response) ? ' with x-fc-status: 404' : '';
  let message = `The function answered HTTP ${status}${marked}`;
  let errorType = `HTTP${status}`;
  const body = errorBody(response);
  if (
    body.length > 0 &&
    body.length <= ERROR_BODY_CAP &&
    (typeof body === 'string' ? body[0] === '{' : body[0] === 0x7b)
  ) {
    try {
      const parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as Record<string, unknown>;
      if (typeof parsed.errorMessage === 'string') {
        // Kept in the record and in each retry's event, the type in the attempt's span (`error.type`)
        // too: bounded like FC's own error messages.
        message = cutErrorText(parsed.errorMessage);
        if (typeof parsed.errorType === 'string' && parsed.errorType !== '') errorType = cutErrorText(parsed.errorType);
      }
    } catch {
      // Not JSON: the status says it.
    }
  }
  return { kind: 'failure', condition: 'UnhandledInvocationError', message, errorType, response };
}

/**
 * A failed answer's body as the app wrote it: decoded when the app's compression middleware
 * compressed it (an error handler's `{ errorMessage }` over its 1 KiB threshold goes out gzipped to
 * the replay's `Accept-Encoding`); as it is when it does not decode within {@link ERROR_BODY_CAP}.
 */
function errorBody(response: BridgeResponse): string | Buffer {
  const body = response.body;
  if (typeof body === 'string' || body.length === 0 || body.length > ERROR_BODY_CAP) return body;
  const decode = decoderOf(response.headers['content-encoding'], ERROR_BODY_CAP);
  if (decode === undefined) return body;
  try {
    return decode(body);
  } catch {
    // Over the cap (then no function error's), or not what its encoding says (read as it came).
    return body;
  }
}

/**
 * An answer's body as a record keeps it: text, or base64 for binary; decoded when compressed (up
 * to `decodedCap`). `keepBytes`: at most this many of its bytes (a task's returnPayload keeps
 * 1 MiB), cut on a whole UTF-8 character.
 */
function bodyText(response: BridgeResponse, decodedCap: number, keepBytes = Number.POSITIVE_INFINITY): string {
  const body = response.body;
  if (typeof body === 'string') {
    // A string's length counts UTF-16 units, not bytes: within keepBytes whatever its script.
    if (body.length * 3 <= keepBytes) return body;
    return cutToBytes(Buffer.from(body, 'utf8'), keepBytes, true);
  }
  const decoded = decodedBody(body, response.headers['content-encoding'], decodedCap);
  if (decoded === undefined) return cutToBytes(body, keepBytes, isText(response.headers) === 'text');
  const decodedIsText = isText({ 'content-type': response.headers['content-type'] }) === 'text';
  return cutToBytes(decoded.bytes, keepBytes, decodedIsText, decoded.cut);
}

/** The first `keepBytes` of `bytes`, as text when `text` and UTF-8 (a character cut in two left out), else base64. */
function cutToBytes(bytes: Buffer, keepBytes: number, text: boolean, cut = false): string {
  const over = bytes.length > keepBytes;
  const kept = over ? bytes.subarray(0, keepBytes) : bytes;
  return text ? utf8OrBase64(kept, cut || over) : kept.toString('base64');
}

/**
 * A text body as text when its bytes are UTF-8, else base64 as a binary body is (as the handler
 * answers it): decoded as UTF-8, a Latin-1 `é` would be recorded as U+FFFD. `cut`: the beginning
 * of a decoded answer (see decodedBody), which may end within a character: that one is left out.
 */
function utf8OrBase64(bytes: Buffer, cut = false): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  if (cut) {
    for (let drop = 1; drop <= 3 && drop < bytes.length; drop++) {
      const whole = bytes.subarray(0, bytes.length - drop);
      if (isUtf8(whole)) return whole.toString('utf8');
    }
  }
  return bytes.toString('base64');
}

/** At most this much of a compressed answer is decoded for a task's record (which keeps 1 MiB of it). */
const DECODED_CAP = 4 * RETURN_PAYLOAD_CAP;
/**
 * At most this much of a compressed answer is decoded for a destination record, which holds an
 * uncompressed answer whole: FC's bound on a function's answer, so that a compressed answer is
 * recorded whole too (not cut at 4 MiB because the caller asked for gzip).
 */
const RECORD_DECODED_CAP = 32 * 1024 * 1024;

type Decoder = (input: Buffer) => Buffer;

/** The decoder of a content coding, tolerant of an input cut short (its beginning is decoded). */
function decoderOf(encoding: unknown, cap: number): Decoder | undefined {
  if (typeof encoding !== 'string') return undefined;
  const options = { maxOutputLength: cap, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  switch (encoding.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return (input) => zlib.gunzipSync(input, options);
    case 'deflate':
      return (input) => zlib.inflateSync(input, options);
    case 'br':
      return (input) =>
        zlib.brotliDecompressSync(input, {
          maxOutputLength: cap,
          finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
        });
    default:
      return undefined;
  }
}

/**
 * A compressed answer's body decoded (gzip, deflate or br: an app's compression middleware
 * answers the `Accept-Encoding` the replayed request carries, and no client reads the answer), so
 * that a task's `returnPayload` and a destination's `responsePayload` are the app's text, not
 * base64 of compressed bytes. Past `cap` decoded ({@link DECODED_CAP} for a task's record, which
 * keeps 1 MiB; {@link RECORD_DECODED_CAP} for a destination's), the beginning of it: a shorter
 * part of the input is decoded, halved until it fits. `undefined` for another or no encoding, or
 * bytes that do not decode.
 */
function decodedBody(body: Buffer, encoding: unknown, cap: number): { bytes: Buffer; cut: boolean } | undefined {
  const decode = decoderOf(encoding, cap);
  if (!decode || body.length === 0) return undefined;
  for (let length = body.length; length > 0; length = Math.floor(length / 2)) {
    try {
      const decoded = decode(length === body.length ? body : body.subarray(0, length));
      // A part that gives nothing yet (brotli may hold its output back to a block's end): as it is.
      if (length < body.length && decoded.length === 0) return undefined;
      // Whole, or its beginning only (the input halved until it fitted): then it may end within a character.
      return { bytes: decoded, cut: length < body.length };
    } catch (error) {
      // Only a result over the cap is worth a shorter try; anything else is not what it says it is.
      if ((error as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') return undefined;
    }
  }
  return undefined;
}

/** A task's `returnPayload`: its answer's first 1 MiB (of bytes, not characters; base64 of them for binary). */
function returnPayload(response: BridgeResponse): string {
  return bodyText(response, DECODED_CAP, RETURN_PAYLOAD_CAP);
}

/**
 * The destination record of a finished task, in FC's format (docs/destinations.md):
 * `requestPayload` is the captured request as JSON; `responsePayload` the response body on
 * success, else `{ errorMessage, errorType }`; `responseContext.statusCode` the last attempt's
 * HTTP status, 502 when the app threw, 504 when it timed out, 0 when no attempt ran.
 *
 * @example
 * ```ts
 * declare const record: TaskRecord;
 * const destinationRecord = buildDestinationRecord(record, 'EventAgeExceeded', undefined);
 * destinationRecord.requestContext.condition; // 'EventAgeExceeded'
 * ```
 */
export function buildDestinationRecord(
  record: TaskRecord,
  condition: DestinationCondition,
  outcome: AttemptOutcome | undefined,
): DestinationRecord {
  const response = outcome && 'response' in outcome ? outcome.response : undefined;
  // Without an attempt of its own (expired, stopped while waiting), the last one that ran, if any.
  let statusCode = response?.statusCode ?? record.lastStatusCode ?? 0;
  let responsePayload: string;
  if (condition === '' && response) {
    responsePayload = bodyText(response, RECORD_DECODED_CAP);
  } else if (condition === '') {
    // Delivered again after a restart: the response is gone, its recorded body is not.
    responsePayload = record.returnPayload ?? '';
  } else {
    let errorMessage = record.taskErrorMessage ?? condition;
    // Sent again after a crash: the function's own error type, kept with the task.
    let errorType: string = record.lastErrorType ?? condition;
    if (outcome?.kind === 'failure') {
      errorMessage = outcome.message;
      errorType = outcome.errorType;
      statusCode = attemptStatus(outcome);
    }
    responsePayload = JSON.stringify({ errorMessage, errorType });
  }
  return {
    timestamp: Date.now(),
    requestContext: {
      requestId: record.requestId,
      functionArn: record.functionArn,
      condition,
      approximateInvokeCount: record.attempts,
    },
    requestPayload: serializeRequest(record.payload),
    responseContext: { statusCode, functionError: condition },
    responsePayload,
  };
}

/**
 * An attempt's HTTP status: its response's, else 504 for a timeout, 502 for a throw, and 0 for
 * one a crash cut short (it neither answered nor timed out).
 */
function attemptStatus(outcome: AttemptOutcome & { kind: 'failure' }): number {
  if (outcome.response) return outcome.response.statusCode;
  if (outcome === INTERRUPTED) return 0;
  return outcome.condition === 'InvocationError' ? 504 : 502;
}

/** No destination on a side: none configured, or an empty list. */
const noTargets = (targets: Destination | Destination[] | undefined): boolean =>
  targets === undefined || (Array.isArray(targets) && targets.length === 0);

/** The destination side a finished record's condition calls. */
const sideOf = (record: TaskRecord): 'onSuccess' | 'onFailure' =>
  (record.condition ?? '') === '' ? 'onSuccess' : 'onFailure';

const destinationList = (d: Destination | Destination[] | undefined): Destination[] =>
  d === undefined ? [] : Array.isArray(d) ? d : [d];

/** The handler's own destinations, then FC's (a configured `destinationConfig`), per side. */
function bothDestinations(own: Destinations | undefined, fc: Destinations | undefined): Destinations {
  if (!fc) return own ?? {};
  if (!own) return fc;
  const side = (name: keyof Destinations) => {
    const all = [...destinationList(own[name]), ...destinationList(fc[name])];
    return all.length === 0 ? undefined : all;
  };
  return { onSuccess: side('onSuccess'), onFailure: side('onFailure') };
}

/** The message of an error's cause, when it has one. */
function causeMessage(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  return cause instanceof Error ? cause.message : String(cause);
}
