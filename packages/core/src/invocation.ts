import { badRequest } from './errors.js';
import type { FcContext } from './fc-types.js';
import { isFcRequestId, newRequestId } from './ids.js';
import { plainConstructor } from './plain-object.js';

/**
 * Headers as Node (lower-case names) or FC (any case) give them.
 *
 * @example
 * ```ts
 * const headers: HeaderBag = { 'x-fc-invocation-type': 'Async', 'content-length': 42 };
 * detectInvocation(headers, process.env).type; // 'Async'
 * ```
 */
export type HeaderBag = Record<string, string | string[] | number | undefined>;

/**
 * Sync or async, as FC names the two invocation types.
 *
 * @example
 * ```ts
 * import express from 'express';
 * const app = express();
 * app.get('/jobs', (req, res) => {
 *   const type: InvocationType | undefined = getInvocation(req)?.type;
 *   res.json({ type });
 * });
 * ```
 */
export type InvocationType = 'Sync' | 'Async';

/**
 * What {@link detectInvocation} found, and from which signal (`source`): `task-id`,
 * `invocation-type`, `retry-count`, `local-queue` (fc-async replaying a queued task, whether the
 * `fcAsync()` middleware or a handler around the app queued it: to let replays past an
 * authentication check, use {@link isMiddlewareReplay}), or `default` (no signal: sync).
 *
 * @example
 * ```ts
 * const d: Detection = { type: 'Async', requestId: '1-...', taskId: 't1', attempt: 0, source: 'task-id' };
 * ```
 */
export interface Detection {
  type: InvocationType;
  requestId: string;
  taskId?: string | undefined;
  /** 0 on the first attempt; `x-fc-retry-count`. */
  attempt: number;
  source: 'task-id' | 'invocation-type' | 'retry-count' | 'local-queue' | 'default' | (string & {});
}

/**
 * Replaces {@link detectInvocation}; gets the request headers and `process.env`.
 *
 * @example
 * ```ts
 * const detect: Detector = (headers, env) => ({ ...detectInvocation(headers, env), type: headers['x-my-async'] ? 'Async' : 'Sync' });
 * ```
 */
export type Detector = (headers: HeaderBag, env: Record<string, string | undefined>) => Detection;

/**
 * The invocation context an app sees through {@link getInvocation}. Credentials are never here.
 *
 * @example
 * ```ts
 * import express from 'express';
 * const app = express();
 * app.post('/jobs', (req, res) => {
 *   const inv = getInvocation(req);
 *   res.json({ requestId: inv?.requestId, async: inv?.type === 'Async' });
 * });
 * ```
 */
export interface Invocation extends Detection {
  functionName: string;
  region: string;
  accountId: string;
  qualifier: string;
  /** The version FC ran, when the qualifier names one: `undefined` on `LATEST`, which has none (FC's `''`). */
  versionId?: string | undefined;
  /** Memory of the function instance, MB, when FC says. */
  memoryMB?: number | undefined;
  /**
   * The function's timeout, seconds, when FC says (`context.function.timeout` on a built-in
   * runtime, `x-fc-function-timeout` on a custom one): FC ends the invocation that long after it
   * started. An attempt of fc-async's local queue has `async.timeoutSeconds`, which ends it so.
   */
  timeoutSeconds?: number | undefined;
  instanceId?: string | undefined;
  /**
   * Fires when the invocation is stopped or times out: async attempts in local mode (a stop,
   * `async.timeoutSeconds`, a shutdown), and under `fc-async dev` a sync call past its function's
   * timeout (answered `504`), as FC ends it. On FC (platform mode) FC itself ends an invocation
   * at the function's timeout: no timer of the handler's fires it. Each invocation has its own,
   * made when first read (a sync call's never aborts but under `fc-async dev`): listeners added to
   * it go with the invocation, however many calls the process serves.
   */
  signal: AbortSignal;
}

const TASK_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Checks a task id against FC's rule: `^[A-Za-z_][A-Za-z0-9_-]*$`, at most 128 characters.
 *
 * @example
 * ```ts
 * isValidTaskId('resize_42'); // true
 * isValidTaskId('42'); // false
 * ```
 */
export function isValidTaskId(id: string): boolean {
  return id.length > 0 && id.length <= 128 && TASK_ID.test(id);
}

function header(headers: HeaderBag, name: string): string | undefined {
  let value = headers[name];
  if (value === undefined) {
    // FC 3.0 events keep canonical case (`X-Fc-Request-Id`); Node lower-cases.
    for (const key in headers) {
      if (key.length === name.length && key.toLowerCase() === name) {
        value = headers[key];
        break;
      }
    }
  }
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0] : String(value);
}

/**
 * Tells a sync invocation from an async one, using FC's signals strongest first (fc-contract
 * section 2): `x-fc-async-task-id` (or FC 2.0's `x-fc-stateful-async-invocation-id`) present,
 * `x-fc-invocation-type: Async`, `x-fc-retry-count` above 0. Pure. Throws an `FcAsyncError`
 * (400) for an invocation type other than Sync or Async, or a task id breaking FC's rule.
 *
 * @example
 * ```ts
 * detectInvocation({ 'x-fc-invocation-type': 'Async', 'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9' }, process.env);
 * // { type: 'Async', requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', attempt: 0, source: 'invocation-type' }
 * ```
 */
export function detectInvocation(headers: HeaderBag, _env: Record<string, string | undefined> = {}): Detection {
  const taskId = header(headers, 'x-fc-async-task-id');
  return decide(
    header(headers, 'x-fc-request-id'),
    header(headers, 'x-fc-invocation-type'),
    taskId ?? header(headers, 'x-fc-stateful-async-invocation-id'),
    header(headers, 'x-fc-retry-count'),
    taskId === undefined,
  );
}

/**
 * {@link detectInvocation} for headers whose names are all lower-case, as an `FcRequest`'s are:
 * a missing header is not searched for in other letter cases. The handler's default detector.
 * Each header is read at a site of its own, which V8 keeps fast.
 */
export function detectLowerCased(headers: HeaderBag, _env?: Record<string, string | undefined>): Detection {
  const taskId = first(headers['x-fc-async-task-id']);
  return decide(
    first(headers['x-fc-request-id']),
    first(headers['x-fc-invocation-type']),
    taskId ?? first(headers['x-fc-stateful-async-invocation-id']),
    first(headers['x-fc-retry-count']),
    taskId === undefined,
  );
}

/** A header's value, the first of a repeated one. Internal: the engine's attempts read their request's so. */
export function first(value: HeaderBag[string]): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0] : String(value);
}

function decide(
  requestIdHeader: string | undefined,
  rawType: string | undefined,
  taskId: string | undefined,
  retry: string | undefined,
  /** The task id came in FC 2.0's `x-fc-stateful-async-invocation-id`: a refusal names that header. */
  fc2TaskId: boolean,
): Detection {
  const requestId = requestIdHeader || newRequestId();
  const attempt = retry === undefined ? 0 : Number.parseInt(retry, 10);
  if (retry !== undefined && !(Number.isInteger(attempt) && attempt >= 0 && String(attempt) === retry.trim())) {
    throw badRequest('InvalidArgument', `x-fc-retry-count must be a whole number, got "${clip(retry)}"`);
  }

  let type: InvocationType | undefined;
  if (rawType !== undefined) {
    const t = rawType.trim().toLowerCase();
    if (t === 'async') type = 'Async';
    else if (t === 'sync') type = 'Sync';
    else {
      throw badRequest('InvalidArgument', `X-Fc-Invocation-Type must be Sync or Async, got "${clip(rawType)}"`);
    }
  }
  if (taskId !== undefined) {
    // A task id FC made is the request id ("1-…"), outside the rule for ids a caller chooses: a
    // function FC runs (or the emulator, or fc-async's own replay) may carry one. Callers' ids
    // are held to the rule where a task is accepted (see AsyncEngine.accept).
    if (!isValidTaskId(taskId) && !isFcRequestId(taskId)) {
      throw badRequest('InvalidArgument', taskIdRule(taskId, fc2TaskId ? FC2_TASK_ID : TASK_ID_HEADER));
    }
    if (type !== 'Sync') return new DetectionRecord('Async', requestId, taskId, attempt, 'task-id');
  }
  if (type === 'Async') return new DetectionRecord(type, requestId, taskId, attempt, 'invocation-type');
  if (type === undefined && attempt > 0) return new DetectionRecord('Async', requestId, taskId, attempt, 'retry-count');
  return new DetectionRecord('Sync', requestId, taskId, attempt, type === 'Sync' ? 'invocation-type' : 'default');
}

/**
 * A plain {@link Detection} (`Object.prototype`, the fields of a literal in its order) made with
 * `new`: V8 may pretenure an object literal's allocation site, making every later object of it
 * in the old generation (see `ParsedRequest` in fc3.ts); objects made with `new` have no such site.
 */
const DetectionRecord = plainConstructor(function DetectionRecord(
  this: Detection,
  type: InvocationType,
  requestId: string,
  taskId: string | undefined,
  attempt: number,
  source: Detection['source'],
) {
  this.type = type;
  this.requestId = requestId;
  this.taskId = taskId;
  this.attempt = attempt;
  this.source = source;
});

const TASK_ID_HEADER = 'X-Fc-Async-Task-Id';
const FC2_TASK_ID = 'X-Fc-Stateful-Async-Invocation-Id';

/**
 * FC's rule, the header that broke it and what was sent: a header given twice reads
 * `job_1, job_1`, which the rule alone left unexplained.
 */
const taskIdRule = (taskId: string, name = TASK_ID_HEADER) =>
  `${name} must match ^[A-Za-z_][A-Za-z0-9_-]*$ and be at most 128 characters, got "${clip(taskId)}"`;

/**
 * Whether `headers` ask for an async invocation, read without refusing any of them: an
 * `x-fc-invocation-type` of Async, else (unless it says Sync) a retry count above 0. For a call
 * detection refused (a task id breaking FC's rule, a retry count that is not a whole number),
 * whether FC may already have accepted it as an async one.
 *
 * @example
 * ```ts
 * asksForAsync({ 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': 'two' }); // true
 * asksForAsync({ 'x-fc-async-task-id': '42' }); // false: a task id alone comes with sync calls too
 * ```
 */
export function asksForAsync(headers: HeaderBag): boolean {
  const type = header(headers, 'x-fc-invocation-type')?.trim().toLowerCase();
  if (type === 'async') return true;
  if (type === 'sync') return false;
  // A task id alone does not say FC accepted the call as async: FC refuses a task id out of its
  // rule itself, so one that reaches the function came with a sync call.
  const retry = header(headers, 'x-fc-retry-count')?.trim();
  return retry !== undefined && /^\d+$/.test(retry) && Number(retry) > 0;
}

/** Refuses, as FC does with a 400, a task id a caller chose that breaks FC's rule (see {@link isValidTaskId}). */
export function checkCallerTaskId(taskId: string): void {
  if (!isValidTaskId(taskId)) throw badRequest('InvalidArgument', taskIdRule(taskId));
}

function clip(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}

const kInvocation = Symbol.for('fc-async.invocation');

type Carrier = object & { [kInvocation]?: Invocation };

/**
 * Attaches the invocation to a Node request (an own property, so it survives Express's prototype swap).
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http';
 * declare const req: IncomingMessage;
 * const headers = { 'x-fc-invocation-type': 'Async' };
 * setInvocation(req, buildInvocation(detectInvocation(headers, process.env), headers, undefined, process.env));
 * getInvocation(req)?.type; // 'Async'
 * ```
 */
export function setInvocation(req: object, invocation: Invocation): void {
  (req as Carrier)[kInvocation] = invocation;
}

/**
 * The invocation context of a request: pass Node's `req` (Express), Koa's `ctx` or Fastify's
 * `request`. `undefined` outside an fc-async invocation. Per request, never global, so
 * concurrent invocations in one instance never see each other's.
 *
 * @example
 * ```ts
 * import Router from '@koa/router';
 * const router = new Router();
 * declare function cleanup(): void;
 * router.post('/jobs', (ctx) => {
 *   const inv = getInvocation(ctx);
 *   if (inv?.type === 'Async') inv.signal.addEventListener('abort', () => cleanup());
 * });
 * ```
 */
export function getInvocation(req: unknown): Invocation | undefined {
  if (!req || typeof req !== 'object') return undefined;
  const direct = (req as Carrier)[kInvocation];
  if (direct) return direct;
  const inner = (req as { req?: unknown; raw?: unknown }).req ?? (req as { raw?: unknown }).raw;
  return inner && typeof inner === 'object' ? (inner as Carrier)[kInvocation] : undefined;
}

// Registered, as `kInvocation` is: an app may load another copy of the core than its adapter's.
const kMiddlewareReplay = Symbol.for('fc-async.middlewareReplay');

/**
 * Marks `invocation` as a run of a request that an `fcAsync()` middleware accepted itself,
 * after every middleware in front of it had passed the request (see {@link isMiddlewareReplay}).
 * Not enumerable: a copy of the invocation (`{ ...inv }`) does not carry it.
 *
 * @internal
 */
export function markMiddlewareReplay(invocation: Invocation): void {
  Object.defineProperty(invocation, kMiddlewareReplay, { value: true });
}

/**
 * Whether `req` (Node's `req`, Koa's `ctx`, Fastify's `request`) is fc-async re-running a request
 * that the app's own `fcAsync()` middleware accepted: an attempt of a task it queued (local mode)
 * or its collecting run on FC (platform mode). That request went through every middleware in
 * front of `fcAsync()` when it arrived, so an authentication check there may let this run
 * through: a replay carries no credentials (they are never stored). False for every other
 * request, the attempts that `createHandler(app)` and `fc-async dev` run included: they took the
 * call (and answered `202`) before the app ran, so nothing checked its caller. The mark is the
 * task's, stored with it when `fcAsync()` accepts it: a task that a `createHandler(app)`
 * deployment sharing the durable store accepted is not marked whichever deployment runs it, and
 * a task queued before a restart still is. Unlike `getInvocation(req)?.source === 'local-queue'`,
 * which those attempts carry too, it cannot be set by a request's headers nor by a handler around
 * the app. It speaks for what stands in front of the app's `fcAsync()` only: a check behind it (a
 * route's, a mounted sub-app's) must not trust it (docs/deploy.md, Authentication).
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { fcAsync } from '@fc-async/express';
 * const app = express();
 * app.use((req, res, next) => {
 *   // fc-async's run of a request this check already let through: it carries no credentials.
 *   if (isMiddlewareReplay(req)) return next();
 *   if (req.headers.authorization !== 'Bearer good-token') return res.status(401).json({ code: 'Unauthorized' });
 *   next();
 * });
 * app.use(fcAsync());
 * ```
 */
export function isMiddlewareReplay(req: unknown): boolean {
  const invocation = getInvocation(req) as (Invocation & { [kMiddlewareReplay]?: true }) | undefined;
  return invocation?.[kMiddlewareReplay] === true;
}

/**
 * Builds the invocation context from detection, FC's common headers, the runtime `context` and
 * the environment, in that order of preference. Credentials are left out.
 *
 * @example
 * ```ts
 * const headers = { 'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9' };
 * const invocation = buildInvocation(detectInvocation(headers, process.env), headers, undefined, process.env);
 * invocation.requestId; // '1-64f6d6e7-e01edb1cce58240ed59b59d9'
 * ```
 */
export function buildInvocation(
  detection: Detection,
  headers: HeaderBag,
  context: FcContext | undefined,
  env: Record<string, string | undefined>,
  signal?: AbortSignal,
): Invocation {
  return invocationOf(detection, headers, false, context, env, signal);
}

/**
 * {@link buildInvocation} for headers whose names are all lower-case, as an `FcRequest`'s are
 * (see {@link detectLowerCased}): a missing header is not searched for in other letter cases.
 * Most calls carry none of the FC headers read here, and each search walked every header. The
 * handler's.
 */
export function buildInvocationLowerCased(
  detection: Detection,
  headers: HeaderBag,
  context: FcContext | undefined,
  env: Record<string, string | undefined>,
  signal?: AbortSignal,
): Invocation {
  return invocationOf(detection, headers, true, context, env, signal);
}

function invocationOf(
  detection: Detection,
  headers: HeaderBag,
  lowerCased: boolean,
  context: FcContext | undefined,
  env: Record<string, string | undefined>,
  signal: AbortSignal | undefined,
): Invocation {
  const read = lowerCased ? (name: string) => first(headers[name]) : (name: string) => header(headers, name);
  const timeout = context?.function?.timeout ?? Number(read('x-fc-function-timeout'));
  // The detection's fields are listed, not spread: V8 builds `{ ...x, more }` on a slow path
  // that costs microseconds on every invocation.
  return new InvocationRecord(
    detection,
    context?.function?.name ?? read('x-fc-function-name') ?? env.FC_FUNCTION_NAME ?? '',
    context?.region ?? read('x-fc-region') ?? env.FC_REGION ?? '',
    context?.accountId ?? read('x-fc-account-id') ?? env.FC_ACCOUNT_ID ?? '',
    context?.service?.qualifier ?? read('x-fc-qualifier') ?? env.FC_QUALIFIER ?? 'LATEST',
    // FC's empty version id (LATEST has none) is none, as on an attempt of the local queue.
    (context?.service?.versionId ?? read('x-fc-version-id')) || undefined,
    memoryOf(context?.function?.memory ?? read('x-fc-function-memory'), env),
    typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
    env.FC_INSTANCE_ID,
    signal,
  );
}

/**
 * The function's memory in MB as FC gives it (its context, or the `x-fc-function-memory` header),
 * else `FC_FUNCTION_MEMORY_SIZE`; `undefined` unless a positive number. Internal: sync calls and
 * the engine's attempts read it so.
 */
export function memoryOf(
  given: number | string | undefined,
  env: Record<string, string | undefined>,
): number | undefined {
  const memory = Number(given ?? env.FC_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(memory) && memory > 0 ? memory : undefined;
}

/**
 * An {@link Invocation} made with `new`, which V8 never pretenures (see `DetectionRecord`). Its
 * `signal` is the one given (a deadline's, a platform async call's), else one of its own made
 * when first read, which never aborts: a sync call's. Not one signal shared by every such call:
 * the listeners an app adds to it (`signal.addEventListener('abort', ...)`, a signal of
 * `AbortSignal.any([signal, ...])`) would pile up on it for the life of the process, a
 * `MaxListenersExceededWarning` from the eleventh on.
 */
class InvocationRecord implements Invocation {
  type: Detection['type'];
  requestId: string;
  taskId: string | undefined;
  attempt: number;
  source: Detection['source'];
  functionName: string;
  region: string;
  accountId: string;
  qualifier: string;
  versionId: string | undefined;
  memoryMB: number | undefined;
  timeoutSeconds: number | undefined;
  instanceId: string | undefined;
  #signal: AbortSignal | undefined;

  constructor(
    detection: Detection,
    functionName: string,
    region: string,
    accountId: string,
    qualifier: string,
    versionId: string | undefined,
    memoryMB: number | undefined,
    timeoutSeconds: number | undefined,
    instanceId: string | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.type = detection.type;
    this.requestId = detection.requestId;
    this.taskId = detection.taskId;
    this.attempt = detection.attempt;
    this.source = detection.source;
    this.functionName = functionName;
    this.region = region;
    this.accountId = accountId;
    this.qualifier = qualifier;
    this.versionId = versionId;
    this.memoryMB = memoryMB;
    this.timeoutSeconds = timeoutSeconds;
    this.instanceId = instanceId;
    this.#signal = signal;
  }

  get signal(): AbortSignal {
    this.#signal ??= new AbortController().signal;
    return this.#signal;
  }

  /** The signal given, or made by a read: not one made here. */
  static signalIfAny(record: InvocationRecord): AbortSignal | undefined {
    return record.#signal;
  }
}

/**
 * `invocation`'s signal if it has one already: the one given (a deadline's, a custom runtime's
 * async call's) or one a read made, which never aborts. For fc-async's own checks, so that they
 * do not make a signal no one aborts: on Node 20 an `AbortSignal` costs about 10 µs to make.
 */
export function existingSignal(invocation: Invocation): AbortSignal | undefined {
  return invocation instanceof InvocationRecord ? InvocationRecord.signalIfAny(invocation) : invocation.signal;
}
