import type { AsyncTask, AsyncTaskStatus, DestinationCondition } from '../fc-types.js';
import type { Logger } from '../logger.js';
import { type CapturedRequest, serializeRequest } from './payload.js';

/**
 * A task as the engine stores it: FC's `AsyncTask` fields plus what the engine needs to run it.
 * The tasks API returns only the `AsyncTask` part (see {@link toAsyncTask}).
 *
 * @example
 * ```ts
 * declare const store: TaskStore;
 * const record: TaskRecord | undefined = await store.get('t1');
 * if (record) console.log(record.status, record.attempts, record.payload.url);
 * ```
 */
export interface TaskRecord extends AsyncTask {
  /** The captured request, secrets already removed. */
  payload: CapturedRequest;
  /** When the 202 was sent (epoch ms); the event age counts from here. */
  acceptedAt: number;
  /** Attempts started so far. */
  attempts: number;
  /** Not before this time (epoch ms): a delayed task, or one backing off before a retry. */
  dueAt?: number | undefined;
  /** How the task ended, once it has. */
  condition?: DestinationCondition | undefined;
  /**
   * The HTTP status of the last attempt that failed and was to be retried (502 when it threw, 504
   * when it timed out): the destination record of a task that then ends without an attempt of
   * its own (expired, or stopped while backing off) reports it. Also set with a terminal status
   * while the delivery is pending: a record sent again after a crash reports the attempt's status.
   */
  lastStatusCode?: number | undefined;
  /**
   * The `errorType` of the attempt a task failed with, kept while its delivery is pending: a
   * record sent again after a crash names the function's own error type, as the first would have.
   */
  lastErrorType?: string | undefined;
  /** The serialised trace context of the accept span (W3C carrier). */
  traceContext?: Record<string, string> | undefined;
  /**
   * Set with the terminal status when a destination is to be called, cleared once it was: a
   * task that ended but whose destination call a crash cut short is delivered again on restart.
   */
  deliveryPending?: boolean | undefined;
  /**
   * While `deliveryPending`: the destinations of the side (their places in its list) that took the
   * record before a shutdown cut the delivery short, so that the next start calls only the others.
   */
  deliveredTo?: number[] | undefined;
  /**
   * While `deliveryPending`, with `tracing.newTracePerAttempt`: the trace context of the span of
   * the attempt the task ended with (W3C carrier), so that a delivery made again after a crash is
   * traced in that attempt's trace, as the first call was.
   */
  deliveryTraceContext?: Record<string, string> | undefined;
}

/**
 * Every status an FC async task can have: the values the task API's `status` filter takes.
 *
 * @example
 * ```ts
 * ASYNC_TASK_STATUSES.includes('Running'); // true
 * ```
 */
export const ASYNC_TASK_STATUSES: readonly AsyncTaskStatus[] = Object.freeze([
  'Enqueued',
  'Dequeued',
  'Running',
  'Succeeded',
  'Failed',
  'Stopping',
  'Stopped',
  'Expired',
  'Invalid',
  'Retrying',
]);

/**
 * Statuses after which nothing changes but `destinationStatus`.
 *
 * @example
 * ```ts
 * TERMINAL_STATUSES.has('Succeeded'); // true
 * TERMINAL_STATUSES.has('Running'); // false
 * ```
 */
export const TERMINAL_STATUSES: ReadonlySet<AsyncTaskStatus> = new Set<AsyncTaskStatus>([
  'Succeeded',
  'Failed',
  'Stopped',
  'Expired',
  'Invalid',
]);

/**
 * Filters of `tasks.list`, as FC's ListAsyncTasks takes them.
 *
 * @example
 * ```ts
 * const query: TaskQuery = { status: 'Failed', prefix: 'resize_', limit: 50, sortOrderByTime: 'desc' };
 * ```
 */
export interface TaskQuery {
  status?: AsyncTaskStatus | undefined;
  /** Task id prefix. */
  prefix?: string | undefined;
  /** 1..100. @default 20 */
  limit?: number | undefined;
  nextToken?: string | undefined;
  /** By `startedTime`. @default 'desc' */
  sortOrderByTime?: 'asc' | 'desc' | undefined;
  /** Inclusive bounds on `startedTime`, epoch ms. */
  startedTimeBegin?: number | undefined;
  startedTimeEnd?: number | undefined;
  /** Include `taskPayload`. @default false */
  includePayload?: boolean | undefined;
}

/**
 * A page of tasks.
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * const page: TaskPage = await handler.tasks.list({ limit: 20 });
 * if (page.nextToken) await handler.tasks.list({ limit: 20, nextToken: page.nextToken });
 * ```
 */
export interface TaskPage<T = AsyncTask> {
  tasks: T[];
  nextToken?: string | undefined;
}

/**
 * Fields a transition may set. A field set to `undefined` is cleared (the engine clears `dueAt`,
 * `deliveryPending`, `deliveredTo` and `lastStatusCode` so): a store that skips it instead keeps a
 * delivered task `deliveryPending`, and calls its destination again at every start.
 *
 * @example
 * ```ts
 * declare const store: TaskStore;
 * const patch: TaskPatch = { destinationStatus: 'Succeeded', deliveryPending: false };
 * await store.update('t1', patch);
 * ```
 */
export type TaskPatch = Partial<Omit<TaskRecord, 'taskId' | 'events' | 'status'>>;

/**
 * How {@link TaskStore.transition} moves a task: only from one of the `from` statuses, with
 * an optional patch (or a function of the current record making one), the new event's detail,
 * and a status passed through on the way (`via`: an event of its own, as FC records `Dequeued`).
 *
 * @example
 * ```ts
 * declare const store: TaskStore;
 * declare const taskId: string;
 * const options: TransitionOptions = { from: ['Enqueued'], via: 'Dequeued', patch: { startedTime: Date.now() } };
 * await store.transition(taskId, 'Running', options);
 * ```
 */
export interface TransitionOptions {
  from: readonly AsyncTaskStatus[];
  patch?: TaskPatch | ((current: TaskRecord) => TaskPatch);
  detail?: string;
  via?: AsyncTaskStatus;
  /**
   * When set, the change applies only if the task's `attempts` is this too: an attempt's end
   * names its attempt, so that an attempt outlived by a newer one (its instance lost the task
   * while still running it) cannot end the newer one's run.
   */
  attempts?: number;
}

/**
 * Where task records live. Every method may be sync or async (a throw counts as a rejection).
 * The engine changes no record it gave `insert` or got from the store, so a store may keep and
 * return its own objects. `transition` is a
 * compare-and-set: it applies only when the current status is in `from` (and the attempt count
 * is `attempts`, when given: see `transitionApplies`), so that a stop and an attempt racing each
 * other (possibly on two machines) cannot both win. A store that cannot take a read or a write
 * now (a database away, a full disk) throws an `FcAsyncError` with `statusCode: 503` and
 * `retryAfterSeconds`: the caller is answered it (a 503 with `Retry-After`), where any other error
 * answers a bare 500. What else a store of your own must do (ordering, recovery, retention) is in
 * docs/async.md, *A backend of your own*; the TaskStore table the built-in stores share is in the
 * repository's private `@fc-async/test-kit`.
 *
 * @example
 * ```ts
 * const store: TaskStore = new MemoryTaskStore({ maxTasks: 1000 });
 * const record = await store.get('t1');
 * const { tasks } = await store.list({ status: 'Running', limit: 10 });
 * ```
 */
export interface TaskStore {
  /**
   * Adds a task; `false` when the id is known and its record is not `Invalid` (the caller answers
   * 409). A record `Invalid` (a task the queue refused: it never ran, its accept answered 503) is
   * replaced by `record` in the same atomic step, a compare-and-set on its status, as if it had
   * never been there: its events, payload and place in the indexes (listing, retention) go, the new
   * record's take their place, and `true` is the answer, so that a caller who sends the task again
   * under the same id is accepted. A store written before this (it answers `false` for an
   * `Invalid` record too) stays correct: the caller is answered 409, saying the task never ran.
   * `true` means the record is kept: the engine runs the task from it (a task gone before it runs
   * is logged and dropped).
   */
  insert(record: TaskRecord): boolean | Promise<boolean>;
  /**
   * The task, or `undefined` when the id is unknown. A task the store holds but cannot read (its
   * record damaged) throws an `FcAsyncError` with `statusCode` 500: the engine logs it and does not
   * run it (a 503 or any other error is taken for the store being away: the run is tried again).
   */
  get(taskId: string): TaskRecord | undefined | Promise<TaskRecord | undefined>;
  /**
   * The task as a crash now would leave it: what the task API answers. A store that groups its
   * commits (and whose `get` sees writes not committed yet) commits what it holds first, as its
   * `list` does, so that GetAsyncTask never shows an accept or an end a crash then loses.
   * Optional: without it, `get`.
   */
  getCommitted?(taskId: string): TaskRecord | undefined | Promise<TaskRecord | undefined>;
  /**
   * The task as this instance last saw it, possibly out of date (a distributed store's cache),
   * else as `get`. The engine decides on it and then writes with `transition`, which checks the
   * status again: a store whose `get` costs a round trip saves one per attempt.
   */
  peek?(taskId: string): TaskRecord | undefined | Promise<TaskRecord | undefined>;
  /**
   * Moves a task to `status`, appending an event (and an extra one first for `via`, e.g. a
   * `Dequeued` on the way to `Running`), when its status is one of `from`. `patch` may be a
   * function of the task as it is when the change applies (a compare-and-set that retries calls
   * it again). Returns the updated record, or `undefined` when the task is unknown or its status
   * was not in `from`.
   */
  transition(
    taskId: string,
    status: AsyncTaskStatus,
    options: TransitionOptions,
  ): TaskRecord | undefined | Promise<TaskRecord | undefined>;
  /** Sets fields without a status change (e.g. `destinationStatus`); nothing for an unknown id. */
  update(taskId: string, patch: TaskPatch): void | Promise<void>;
  /**
   * A page of tasks, as ListAsyncTasks gives them: filtered by `status`, `prefix` and the
   * `startedTime` range, ordered by `startedTime` then task id (`sortOrderByTime`), at most
   * `limit`, and a `nextToken` when more follow (`encodeCursor`; a token read back with
   * `decodeCursor`, which throws a 400 for one that is not this query's). Without
   * `includePayload` the records' request bodies may be left out (empty), as the task API then
   * answers no payload.
   */
  list(query: TaskQuery): TaskPage<TaskRecord> | Promise<TaskPage<TaskRecord>>;
  /**
   * Tasks not in a terminal status, and finished ones with `deliveryPending`: recovered after a
   * restart (persistent stores), stopped on close (others). Each with every field but
   * `payload`, which a store may omit, and a durable one should: recovery must not read every
   * waiting request's body at once (50 000 delayed tasks of 1 MB would be 50 GB). The engine reads
   * a task with `get()` when it needs its request (an attempt, a destination record). In the
   * order they were accepted (`startedTime`), which is the order they are queued again.
   */
  unfinished(): Omit<TaskRecord, 'payload'>[] | Promise<Omit<TaskRecord, 'payload'>[]>;
  /**
   * Called with task ids whose stop was requested on another instance. Needed, with
   * `requestStop`, by a store whose queue is `shared`: without them a stop reaches an attempt
   * running on another instance only when that attempt ends.
   */
  onStopRequested?(listener: (taskId: string) => void): void;
  /** Tells other instances that `taskId` should stop (see `onStopRequested`). */
  requestStop?(taskId: string): void | Promise<void>;
  /**
   * Called when stop requests may have been missed (distributed stores: the channel that carries
   * them was down and is back): the engine then reads the tasks it runs and stops those whose
   * record says `Stopping`.
   */
  onStopsMayBeMissed?(listener: () => void): void;
  /**
   * For a store that several processes share (a distributed one): calls `listener` with the ids
   * of tasks whose record other instances changed (accepted, taken, retried, ended, stopped), so
   * that a view of the tasks (the emulator's dashboard) follows them without reading them again
   * and again. An empty list means changes may have been missed (the watch just began, or its
   * connection came back after an outage): read again. Called soon after each change is written;
   * a task may also be told earlier, when what signals its change comes before its record shows
   * it (BullMQ: a job taken before the attempt writes `Running`), and is then told again once the
   * record does. Watching costs only while a listener is subscribed; the returned function
   * unsubscribes it. Optional: a store one process owns has nothing to tell, its engine's events
   * carry every change.
   */
  watch?(listener: (taskIds: readonly string[]) => void): () => void;
  close?(): void | Promise<void>;
}

/**
 * What the queue hands the engine: the task to attempt.
 *
 * @example
 * ```ts
 * const queue = new PQueueDriver(2);
 * const job: QueueJob = { taskId: 't1' };
 * queue.enqueue(job, 1000); // runs no sooner than in 1 s
 * ```
 */
export interface QueueJob {
  taskId: string;
}

/**
 * What `process` tells the queue about a job: `undefined` when it is done, or the delay after
 * which the engine wants another attempt of the same task (the queue schedules it: a timer
 * for the in-process queue, a retry with that backoff for BullMQ, so the job keeps its id).
 *
 * @example
 * ```ts
 * declare const job: QueueJob;
 * declare function processJob(job: QueueJob): Promise<JobResult>;
 * const result: JobResult = await processJob(job);
 * if (result) setTimeout(() => void processJob(job), result.retryInMs);
 * ```
 */
export type JobResult = { retryInMs: number } | undefined;

/**
 * Runs jobs with bounded concurrency. The engine decides retries (policy, backoff); the queue
 * carries them out when `process` asks for one.
 *
 * @example
 * ```ts
 * const backend: AsyncBackend = {
 *   name: 'memory-custom-queue',
 *   persistent: false,
 *   create: ({ concurrency }) => {
 *     const queue: QueueDriver = new PQueueDriver(concurrency);
 *     return { store: new MemoryTaskStore(), queue };
 *   },
 * };
 * ```
 */
export interface QueueDriver {
  /**
   * True when jobs live outside this process and any instance may run them (BullMQ): the queue
   * recovers interrupted jobs itself (the engine does not on start), `pending()` may be
   * approximate, and `drain()` covers only this instance's attempts and deliveries. To accept in
   * one round trip, the engine then calls `enqueue` right after `insert`, before the insert
   * settles: the queue must refuse a job id it holds already, and must not hand a job to a
   * worker before the record is written (BullMQ: the same Redis connection, in order).
   */
  readonly shared?: boolean;
  /** Starts consuming; `process` settles when the attempt and its bookkeeping are done. */
  start(process: (job: QueueJob) => Promise<JobResult>): void | Promise<void>;
  /**
   * Queues a job, to run no sooner than `delayMs` from now. A queue that is not `shared` but
   * keeps its jobs across a restart gets every unfinished task enqueued again when a persistent
   * backend starts: it must take an id it holds already (keep one job for it), not throw. Waiting
   * and delayed jobs keep the process alive (timers not `unref`ed), as `drain()` waits for them.
   * A throw or rejection at an accept refuses the task: the engine records it `Invalid` and answers
   * `503 ServiceUnavailable`; a send of the same id later replaces that record (see
   * `TaskStore.insert`) and is queued again.
   */
  enqueue(job: QueueJob, delayMs: number): void | Promise<void>;
  /** Drops a waiting or delayed job; `true` when one was dropped. */
  cancel(taskId: string): boolean | Promise<boolean>;
  /** Jobs waiting or delayed, not running. */
  pending(): number;
  /** Jobs running now. */
  running(): number;
  /**
   * When the earliest waiting job may start (epoch ms, the `Date.now()` clock): a time not after
   * now while a job is ready and waits for a slot, else when the earliest delayed one (an
   * `X-Fc-Async-Delay`, a retry's backoff) is due; `undefined` when no job waits. Optional: with
   * it, a queue whose jobs live in this process lets `close()` end before its deadline when all
   * that is left is delayed past it (nothing can happen meanwhile). The in-process queue has it;
   * a shared queue needs none (`drain()` does not wait for its waiting jobs).
   */
  nextDueAt?(): number | undefined;
  /**
   * The engine is closing: take no more jobs; those under way go on until `close`. Optional: a
   * shared queue has it, so that what waits goes to the other instances rather than being
   * started here and cut short by the close.
   */
  stopTaking?(): void;
  /**
   * How long a task waits before it runs again when `close()` gave up on its attempt (the app
   * ignored its abort past the grace, and may go on running in this process). Optional, 0 by
   * default: a shared queue sets it (BullMQ: `lockDurationMs`) so that no other instance runs the
   * task alongside an attempt still running here, should the process outlive `close()`.
   */
  readonly abandonedRetryDelayMs?: number;
  close(): void | Promise<void>;
}

/**
 * What a backend needs to build its store and queue.
 *
 * @example
 * ```ts
 * const backend: AsyncBackend = {
 *   name: 'custom',
 *   persistent: false,
 *   create(context: BackendContext) {
 *     context.logger.info('backend starting', { concurrency: context.concurrency });
 *     return { store: new MemoryTaskStore(), queue: new PQueueDriver(context.concurrency) };
 *   },
 * };
 * ```
 */
export interface BackendContext {
  concurrency: number;
  logger: Logger;
}

/**
 * A queue and a task store that go together: `memory()` (the default), `sqlite(path)`, or
 * `bullmq(connection)`.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, { async: { backend: memory({ maxTasks: 50_000 }) } });
 * // A backend of your own, whose connect may take up to a minute:
 * declare function connectPostgres(): Promise<{ store: TaskStore; queue: QueueDriver }>;
 * const postgres: AsyncBackend = { name: 'postgres', persistent: true, startTimeoutMs: 60_000, create: connectPostgres };
 * ```
 */
export interface AsyncBackend {
  readonly name: string;
  /** True when accepted tasks survive the process: unfinished ones are recovered on start. */
  readonly persistent: boolean;
  /**
   * How long `create()` may take, in ms. Past it the start fails with a 503 `BackendUnavailable`
   * (`Retry-After: 1`), as one that rejects does: logged, async requests and tasks calls answered
   * 503, and a later demand tries again; what a `create()` that settles later makes is closed
   * (`queue.close()`, `store.close()`). A database that never answers a connect then does not hold
   * every async request for ever. `Infinity`: not bounded (a backend that bounds its own start
   * should still settle). @default 30000
   */
  readonly startTimeoutMs?: number | undefined;
  create(
    context: BackendContext,
  ): { store: TaskStore; queue: QueueDriver } | Promise<{ store: TaskStore; queue: QueueDriver }>;
}

/**
 * The `AsyncTask` view of a record, as the tasks API returns it. `taskPayload` only when asked.
 *
 * @example
 * ```ts
 * declare const record: TaskRecord;
 * const task = toAsyncTask(record, true);
 * ```
 */
export function toAsyncTask(record: TaskRecord, includePayload: boolean): AsyncTask {
  const task: AsyncTask = {
    taskId: record.taskId,
    requestId: record.requestId,
    status: record.status,
    functionArn: record.functionArn,
    qualifier: record.qualifier,
    alreadyRetriedTimes: record.alreadyRetriedTimes,
    events: record.events.map((e) => ({ ...e })),
  };
  if (record.instanceId !== undefined) task.instanceId = record.instanceId;
  if (record.startedTime !== undefined) task.startedTime = record.startedTime;
  if (record.endTime !== undefined) task.endTime = record.endTime;
  if (record.durationMs !== undefined) task.durationMs = record.durationMs;
  if (record.destinationStatus !== undefined) task.destinationStatus = record.destinationStatus;
  if (record.taskErrorMessage !== undefined) task.taskErrorMessage = record.taskErrorMessage;
  if (record.returnPayload !== undefined) task.returnPayload = record.returnPayload;
  if (record.traceId !== undefined) task.traceId = record.traceId;
  if (includePayload) task.taskPayload = serializeRequest(record.payload);
  return task;
}
