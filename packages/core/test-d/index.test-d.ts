import {
  type AdapterHooks,
  type AsyncTask,
  createFcHandler,
  type Detection,
  decodeCursor,
  detectInvocation,
  encodeCursor,
  type FcHandler,
  type FcHttpEvent,
  type FcHttpResult,
  fcHttpEvent,
  fcQueryParameters,
  getInvocation,
  type Invocation,
  isFcTextBody,
  isMiddlewareReplay,
  makeFolderSync,
  memory,
  type TaskPage,
} from '@fc-async/core';
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';

const handler = createFcHandler((_req, res) => res.end('ok'), {
  async: { mode: 'local', concurrency: 4, maxAsyncRetryAttempts: 2, backend: memory() },
  destinations: { onSuccess: (record) => void record.requestContext.requestId },
});
expectType<FcHandler>(handler);
expectType<Promise<FcHttpResult>>(handler(Buffer.from('{}'), { requestId: 'x' }));
expectType<'local' | 'platform'>(handler.mode);
expectType<import('@fc-async/core').Logger>(handler.logger);
expectType<Promise<AsyncTask | undefined>>(handler.tasks.get('t'));
expectType<Promise<TaskPage>>(handler.tasks.list({ status: 'Running', limit: 10 }));
expectType<Promise<void>>(handler.drain());
// A backend's own start bound: a number of ms (Infinity: none), never a string.
expectAssignable<import('@fc-async/core').AsyncBackend>({ ...memory(), startTimeoutMs: 60_000 });
expectNotAssignable<import('@fc-async/core').AsyncBackend>({ ...memory(), startTimeoutMs: '60s' });

expectType<Detection>(detectInvocation({ 'x-fc-invocation-type': 'Async' }, {}));
expectType<Invocation | undefined>(getInvocation({}));
expectType<boolean>(isMiddlewareReplay({}));
expectAssignable<AbortSignal>(({} as Invocation).signal);

expectError(createFcHandler('not a function'));
expectError(createFcHandler((_req, res) => res.end(), { async: { mode: 'cloud' } }));
expectError(handler.tasks.list({ sortOrderByTime: 'sideways' }));

// Custom runtime (packages/core/src/runtime).
import * as rt from '@fc-async/core';

const runtime = rt.createFcRuntime({ async: { mode: 'local' } });
expectType<rt.FcRuntime>(runtime);
expectAssignable<rt.FcAsyncControls>(runtime);
expectType<Promise<rt.BridgeResponse | undefined>>(
  runtime.handle({} as import('node:http').IncomingMessage, { app: {}, listener: () => (_req, res) => res.end() }),
);
expectAssignable<rt.ReplayTarget>({ app: {}, listener: () => () => undefined, url: '/jobs' });
expectType<Promise<rt.FcRequest>>(rt.readNodeRequest({} as import('node:http').IncomingMessage, { limit: 1024 }));
expectType<void>(
  rt.writeBridgeResponse({} as import('node:http').ServerResponse, { statusCode: 202, headers: {}, body: '' }, 'GET'),
);
expectType<'x-fc-status'>(rt.FC_STATUS_HEADER);
expectType<boolean>(rt.isAnsweredInFront(undefined));
expectType<boolean>(rt.isAnsweredInFront({ statusCode: 503, headers: {}, body: '' }));
const off = rt.addPreStopHook(() => Promise.resolve());
expectType<() => void>(off);
expectAssignable<rt.PreStopHook>(() => undefined);
const listenOptions: rt.FcListenOptions = { port: 0, host: '127.0.0.1', preStopTimeoutMs: 5000, signals: [] };
const hooks: rt.FcServerHooks = { app: {}, ready: async () => undefined };
// Fastify's ready() is a thenable, not a Promise: the hooks take it as it is.
declare const thenable: PromiseLike<unknown>;
expectAssignable<rt.FcServerHooks>({ ready: () => thenable });
expectAssignable<AdapterHooks>({ ready: () => thenable });
expectType<Promise<rt.FcServer>>(rt.listenFc((_req, res) => res.end(), listenOptions, hooks));
const runtimeOptions: rt.FcRuntimeOptions = { redactHeaders: ['x-api-key'] };
expectError<rt.FcRuntimeOptions>({ textContentTypes: [] });
expectError(rt.createFcRuntime({ async: { mode: 'cloud' } }));
// A port may be given as its digits in a string (process.env.PORT), as the runtime takes it.
expectAssignable<rt.FcListenOptions>({ port: '9000' });
expectAssignable<rt.FcListenOptions>({ port: process.env.PORT });
expectError(rt.listenFc((_req, res) => res.end(), { port: true }));
void runtimeOptions;

// Tracing (packages/core/src/tracing).
import * as tr from '@fc-async/core';

const tracingOptions: tr.TracingOptions = {
  enabled: true,
  requestHook: (span, info) => void span.setAttribute('app.kind', info.kind),
  responseHook: (span, info) => void span.setAttribute('app.status', info.response?.statusCode ?? 0),
  extractContext: tr.extractFc2TraceContext,
  flushTimeoutMs: 500,
  newTracePerAttempt: false,
};
tr.createFcHandler((_req, res) => res.end(), { tracing: tracingOptions }, { routeOf: () => '/users/:id' });
const tracing = tr.createTracing(tracingOptions, { logger: tr.silentLogger, redactHeaders: ['x-api-key'] });
expectType<tr.Tracing>(tracing);
expectType<boolean>(tracing.isEnabled());
expectType<boolean>(tracing.isTracing({} as tr.Invocation));
expectType<Promise<void>>(tracing.flush());
expectType<tr.EngineHooks>(tracing.engineHooks);
// A destination hook may be given the delivery's parent context (platform mode: the invocation's).
expectAssignable<tr.EngineHooks>({
  destination: (_task, _side, _condition, destination, parent?: import('@opentelemetry/api').Context) =>
    parent ? destination : destination,
});
// An attempt a crash cut short, and whether the store took an attempt's end (the span ends then).
expectAssignable<tr.EngineHooks>({
  attemptInterrupted: (_task, attempt: number, outcome, willRetry: boolean) =>
    void [attempt, outcome.condition, outcome.errorType, willRetry],
  attemptWritten: (task, attempt: number, accepted: boolean) => void [task.taskId, attempt, accepted],
});
expectError<tr.EngineHooks>({ attemptWritten: (_task: unknown, _attempt: number, accepted: string) => accepted });
// The trace context kept with a task's end while its delivery is pending: a carrier, or none.
expectAssignable<tr.EngineHooks>({
  deliveryContext: (task) =>
    task.taskId ? { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } : undefined,
});
expectError<tr.EngineHooks>({ deliveryContext: () => 'traceparent' });
const tracingRequest: tr.TracingRequest = { method: 'GET', url: '/users/7', headers: { 'user-agent': 'curl' } };
const invocationSpan = tracing.startInvocationSpan(tracingRequest, { requestId: 'r' });
expectType<tr.InvocationSpan | undefined>(invocationSpan);
if (invocationSpan) {
  expectType<number>(invocationSpan.run(() => 1));
  const end: tr.InvocationSpanEnd = { statusCode: 200, route: '/users/:id' };
  expectType<void>(invocationSpan.end(end));
}
expectAssignable<tr.RouteOf>((req) => req.url);
expectAssignable<tr.TracingRequestInfo>({ kind: 'attempt', request: tracingRequest, taskId: 't', attempt: 0 });
expectAssignable<tr.TracingResponseInfo>({ kind: 'invocation', request: tracingRequest, error: new Error('x') });
expectError(tr.createTracing({ flushTimeoutMs: '1s' }));
expectError(tr.createTracing({ requestHook: 'no' }));
expectError<tr.TracingRequestInfo>({ kind: 'other', request: tracingRequest });

// Backends: a queue driver's process callback may ask for a retry; a shared queue says so.
import * as be from '@fc-async/core';

expectAssignable<be.JobResult>({ retryInMs: 250 });
expectAssignable<be.JobResult>(undefined);
// A queue may tell when its earliest waiting job is due (close() stops waiting past its deadline).
expectType<(() => number | undefined) | undefined>(({} as be.QueueDriver).nextDueAt);
expectType<number | undefined>(({} as be.QueueDriver).abandonedRetryDelayMs);
expectError<be.JobResult>({ retryIn: 250 });
const driver: be.QueueDriver = new be.PQueueDriver(2);
expectType<boolean | undefined>(driver.shared);
expectType<void | Promise<void>>(driver.start(async (job) => (job.taskId === 'again' ? { retryInMs: 10 } : undefined)));
expectAssignable<be.TaskRecord['deliveryPending']>(true);
expectType<readonly be.AsyncTaskStatus[]>(be.ASYNC_TASK_STATUSES);

// The compact record codec backends share.
declare const storedRecord: be.TaskRecord;
expectType<string>(be.encodeCompactRecord(storedRecord));
expectType<Omit<be.TaskRecord, 'payload'>>(be.decodeCompactRecord('{}'));
expectType<string>(be.encodeRequestHead(storedRecord.payload));
expectError(be.encodeCompactRecord({ taskId: 't' }));
expectType<be.TaskRecord>(be.patchedRecord(storedRecord, { endTime: 1 }, 'Succeeded'));
expectError(be.patchedRecord(storedRecord, { endTime: 'soon' }));
const transition: be.TransitionOptions = {
  from: ['Enqueued'],
  via: 'Dequeued',
  patch: (r) => ({ attempts: r.attempts + 1 }),
};
expectType<be.TaskRecord | undefined>(be.transitionedRecord(storedRecord, 'Running', transition));
expectType<boolean>(be.transitionApplies(storedRecord, { from: ['Running'], attempts: 1 }));
expectType<void>(be.transitionEvents(storedRecord.events, 'Running', transition, Date.now()));
expectError<be.TransitionOptions>({ from: 'Enqueued' });
class PrunerForTypes extends be.RetentionPruner {
  protected step(): Promise<number> {
    return Promise.resolve(0);
  }
}
expectType<Promise<number>>(new PrunerForTypes(1000, 500, console as unknown as be.Logger).run());

// Retention options shared by the durable backends.
import * as ret from '@fc-async/core';

interface RetainingOptions extends ret.RetentionOptions {
  url: string;
}
const retaining: RetainingOptions = { url: 'db://tasks', maxTasks: 10 };
expectAssignable<ret.RetentionOptions>(retaining);
expectType<ret.ResolvedRetentionOptions>(ret.resolveRetentionOptions({ retentionMs: 1000 }));
expectType<number>(ret.resolveRetentionOptions({}).pruneIntervalMs);
expectError(ret.resolveRetentionOptions({ maxTasks: '10' }));
expectType<number>(ret.integerOption('openTimeoutMs', undefined, 0, 2000));
expectType<number>(ret.integerOption('pruneIntervalMs', undefined, 1, 60_000, ret.MAX_TIMER_MS));

expectType<void>(makeFolderSync('.fc-async/records'));
expectError(makeFolderSync(1));

expectType<FcHttpEvent>(
  fcHttpEvent({ method: 'POST', url: '/jobs?x=1', body: { a: 1 }, headers: { accept: ['a', 'b'] } }),
);
expectType<FcHttpEvent>(fcHttpEvent());
expectError(fcHttpEvent({ method: 1 }));
expectType<Record<string, string>>(fcQueryParameters('a=1'));
expectType<boolean>(isFcTextBody('text/plain'));

// Page tokens are bound to their query.
expectType<string>(encodeCursor(1, 'task', { sortOrderByTime: 'asc' }));
expectType<[number, string]>(decodeCursor('token', { sortOrderByTime: 'asc' }));

// Adapters check their options with core's own check before touching them.
expectType<void>(rt.checkHandlerOptions({ async: {} }, 'handler'));
expectError(rt.checkHandlerOptions({}, 'server'));

// The emulator's start hold (internal): the load it wraps is async, and its value comes back.
declare const hold: rt.EngineStartHold;
expectType<Promise<{ handler: number }>>(rt.holdEngineStarts(hold, async () => ({ handler: 1 })));
expectError(rt.holdEngineStarts(hold, () => 1));
// A late hold (internal) is in force until the function it returns is called.
expectType<() => void>(rt.holdLateEngines({ middleware: () => 'platform' }));
expectError(rt.holdLateEngines({ middleware: () => 'local' }));
expectError<rt.EngineStartHold>({ enter: () => ({ start: Promise.resolve() }) });
// What a handler made under a hold takes where its own options say nothing; `mode` stays its own.
expectAssignable<rt.HeldDefaults>({ logger: rt.silentLogger, async: { concurrency: 4, backend: rt.memory() } });
expectError<rt.HeldDefaults>({ async: { mode: 'local' } });
expectAssignable<rt.EngineStartHold>({
  enter: () => ({ start: Promise.resolve(), waited() {} }),
  defaults: (own: { readonly backend: boolean }) => (own.backend ? undefined : { async: {} }),
});
expectError<rt.EngineStartHold>({ enter: () => ({ start: Promise.resolve(), waited() {} }), defaults: () => 1 });
// An fcAsync() made under a hold may be put in platform mode, a handler's own backend replaced.
expectAssignable<rt.EngineStartHold>({
  enter: () => ({ start: Promise.resolve(), waited() {} }),
  middleware: () => 'platform' as const,
  ownBackend: (backend: rt.AsyncBackend) => backend,
});
expectError<rt.EngineStartHold>({
  enter: () => ({ start: Promise.resolve(), waited() {} }),
  middleware: () => 'local',
});

// Under `exactOptionalPropertyTypes` (tsd runs with it on), every option may be given as
// `undefined`, as the runtime takes it: a value passed through from the caller's own options.
import * as eo from '@fc-async/core';

const maybe = <T>(value: T): T | undefined => value;
expectAssignable<eo.FcHandlerOptions>({
  logger: maybe(eo.silentLogger),
  destinations: undefined,
  async: {
    concurrency: maybe(2),
    backoff: { baseMs: undefined, jitter: maybe('none' as const) },
    isFailure: undefined,
  },
  tracing: { enabled: maybe(true) },
});
expectAssignable<eo.FcHttpEventInit>({ method: maybe('POST'), url: undefined, body: undefined });
expectAssignable<eo.MemoryBackendOptions>({ maxTasks: maybe(10), retentionMs: undefined });
expectAssignable<eo.JsonlDestinationOptions>({ retries: undefined });
expectAssignable<eo.FcListenOptions>({ port: maybe(9000), host: undefined, signals: undefined });
expectAssignable<Parameters<eo.FcHandler['close']>[0]>({ timeoutMs: maybe(100) });
expectAssignable<eo.FcHandlerOptions>({ env: maybe({}) });
expectAssignable<eo.FcListenOptions>({ env: maybe({}) });
expectAssignable<eo.FcHttpEventInit>({ headers: maybe({}) });
expectAssignable<eo.FcClientConfig>({ accessKeyId: 'a', accessKeySecret: 'b', securityToken: maybe('t') });
expectType<number>(eo.normaliseQuery({}).limit);
expectType<number>(eo.backoffDelay(2, { baseMs: 1000, maxMs: 60_000, jitter: 'none' } satisfies eo.ResolvedBackoff));

// Twelfth session's additions: app error logging, the middleware's logger, the engine's timeout, memory's byte bound.
expectType<boolean>(eo.isInvocationAbort(new Error('x'), undefined));
expectType<void>(eo.logAppError(eo.silentLogger, 'express', new Error('x'), undefined));
expectType<string>(eo.nestAppHint({ getHttpAdapter() {}, init() {} }));
expectType<eo.Logger>(eo.createFcRuntime().logger);
expectType<number>(({} as eo.AsyncEngine).timeoutSeconds);
expectType<number>(({} as eo.AsyncEngine).maxAsyncPayloadBytes);
expectAssignable<eo.MemoryBackendOptions>({ maxBytes: maybe(1024) });
expectError(eo.memory({ maxBytes: '1 MB' }));

// FC's own shapes as a test builds them, a field passed through as `undefined` (a helper's own option).
expectAssignable<eo.FcContext>({ requestId: maybe('r'), region: undefined, retryCount: maybe(0) });
expectAssignable<eo.FcContext>({
  function: { name: maybe('f'), timeout: undefined },
  service: { qualifier: undefined },
});
expectAssignable<eo.FcHttpEvent>({
  rawPath: '/',
  body: maybe('x'),
  isBase64Encoded: undefined,
  requestContext: undefined,
});
expectAssignable<eo.FcHttpEvent>({
  rawPath: '/',
  requestContext: { accountId: maybe('1'), http: { method: 'GET', path: maybe('/') } },
});

// Thirteenth session: the engine's started / stopping events, and the attempts a finished task made.
declare const engineEvent: eo.EngineEvent;
if (engineEvent.type === 'started') expectType<number>(engineEvent.attempt);
if (engineEvent.type === 'stopping') expectType<string>(engineEvent.requestId);
if (engineEvent.type === 'finished') expectType<number>(engineEvent.attempts);
// Fourteenth session: a delivered event names its side and each destination's outcome.
if (engineEvent.type === 'delivered') {
  expectType<'onSuccess' | 'onFailure'>(engineEvent.side);
  expectType<readonly eo.DestinationOutcome[]>(engineEvent.destinations);
}
// What a JSON log line holds of any value.
expectType<unknown>(eo.logValue(new Error('down')));
expectType<string>(eo.maskUrl('redis://:pw@127.0.0.1:6379'));

// Sixteenth session's additions: close()'s stopWithinMs, refusals with Retry-After, the bytes of
// pending deliveries, what was thrown described without throwing.
expectAssignable<eo.CloseOptions>({ timeoutMs: maybe(100), stopWithinMs: maybe(2000) });
expectAssignable<Parameters<eo.FcHandler['close']>[0]>({ stopWithinMs: 2000 });
expectError(createFcHandler(() => undefined).close({ stopWithinMs: '2 s' }));
expectType<Readonly<Record<string, string>> | undefined>(
  new eo.FcAsyncError('ResourceThrottled', 'later', { statusCode: 429, retryAfterSeconds: 1 }).headers,
);
expectError(new eo.FcAsyncError('ResourceThrottled', 'later', { retryAfterSeconds: '1' }));
expectAssignable<eo.AsyncOptions>({ maxDeliveryBytes: maybe(64 * 1024 * 1024) });
expectType<Error>(eo.thrownError(Object.create(null)));
expectType<{ message: string; name: string }>(eo.thrownText(Symbol('odd')));
expectType<string | undefined>(({} as eo.TaskRecord).lastErrorType);

// Seventeenth session: what a store may add for the task API's reads and for stops it may have missed.
declare const store17: eo.TaskStore;
expectType<((taskId: string) => eo.TaskRecord | undefined | Promise<eo.TaskRecord | undefined>) | undefined>(
  store17.getCommitted,
);
expectType<((listener: () => void) => void) | undefined>(store17.onStopsMayBeMissed);
expectError(store17.onStopsMayBeMissed?.('not a listener'));

// Eighteenth session: a strict TypeScript walkthrough of the public types.
import * as s18 from '@fc-async/core';

// Object-first loggers (pino, bunyan, Fastify's app.log) are wrapped, and a message-first one is
// no object-first one (pino reads a string after the message as a format argument, and drops the fields).
declare const pinoLike: {
  debug(obj: object, msg?: string, ...args: unknown[]): void;
  info(obj: object, msg?: string, ...args: unknown[]): void;
  warn(obj: object, msg?: string, ...args: unknown[]): void;
  error(obj: object, msg?: string, ...args: unknown[]): void;
};
expectType<s18.Logger>(s18.objectFirstLogger(pinoLike));
expectAssignable<s18.ObjectFirstLog>(pinoLike);
expectError(s18.objectFirstLogger(s18.createConsoleLogger()));

// The TSDoc examples of Destination and functionDestination compile under exactOptionalPropertyTypes.
const alertsUrl = 'https://alerts.example.com/fc';
expectAssignable<s18.Destination>(
  s18.functionDestination(
    (record, context) =>
      fetch(alertsUrl, { method: 'POST', body: JSON.stringify(record), signal: context?.signal ?? null }),
    { timeoutMs: 5000 },
  ),
);
// fcFunctionDestination's maxPayloadBytes: FC's async payload limit in bytes, a number.
const fcClient = { accessKeyId: 'ak', accessKeySecret: 'sk', endpoint: '127.0.0.1:9001' };
expectAssignable<s18.Destination>(s18.fcFunctionDestination('dest-fail', fcClient, { maxPayloadBytes: 256 * 1024 }));
expectError(s18.fcFunctionDestination('dest-fail', fcClient, { maxPayloadBytes: '256KB' }));
declare const maybeContext: s18.DestinationContext | undefined;
expectError(fetch(alertsUrl, { signal: maybeContext?.signal }));

// Error codes: a union, so a typo does not compile and a switch can be exhaustive.
declare const fcError: s18.FcAsyncError;
expectType<s18.FcAsyncErrorCode>(fcError.code);
expectType<s18.FcAsyncErrorCode>(fcError.toJSON().code);
expectAssignable<s18.FcAsyncErrorCode>('AsyncTaskNotFound');
// fc-async dev's 408 for a request body that stopped arriving.
expectAssignable<s18.FcAsyncErrorCode>('RequestTimeout');
// sqlite()'s 500 for a task whose row is damaged on disk.
expectAssignable<s18.FcAsyncErrorCode>('SqliteTaskUnreadable');
expectError<s18.FcAsyncErrorCode>('AsyncTaskNotFund');
// An app's own codes: the class takes them, typed as given.
expectType<s18.FcAsyncError<'TranscodeFailed'>>(new s18.FcAsyncError('TranscodeFailed', 'ffmpeg exited 1'));
expectNotAssignable<s18.FcAsyncError>(new s18.FcAsyncError('TranscodeFailed', 'ffmpeg exited 1'));
declare const caught: unknown;
if (s18.isFcAsyncError<s18.FcAsyncErrorCode | 'TranscodeFailed'>(caught)) {
  expectType<s18.FcAsyncErrorCode | 'TranscodeFailed'>(caught.code);
}
expectError(s18.badRequest('InvalidArgumnet', 'typo'));
expectType<s18.FcAsyncError>(s18.asyncBodyTooLarge('200000 bytes', 131072));
expectError(s18.asyncBodyTooLarge(200000, 131072));
declare const destinationError: s18.DestinationError;
expectType<s18.DestinationErrorCode>(destinationError.code);
expectAssignable<s18.FcAsyncErrorCode>(destinationError.code);
expectType<s18.DestinationError<'WebhookRefused'>>(
  new s18.DestinationError('WebhookRefused', 'an app code', { retryable: false }),
);
function retried(code: s18.DestinationErrorCode): boolean {
  switch (code) {
    case 'DestinationHttpError':
    case 'DestinationNetworkError':
    case 'DestinationTimeout':
    case 'DestinationInvokeError':
      return true;
    case 'DestinationAborted':
    case 'DestinationSdkMissing':
    case 'DestinationInvalid':
      return false;
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}
expectType<boolean>(retried('DestinationTimeout'));
// Why an invocation's signal aborted: `isFcAsyncError(signal.reason)` types its code.
declare const aborted: s18.Invocation;
if (s18.isFcAsyncError(aborted.signal.reason)) expectType<s18.FcAsyncErrorCode>(aborted.signal.reason.code);

// The types public signatures use are exported.
const rotation: s18.SignatureSecrets = ['new-secret', 'old-secret'];
expectType<string>(s18.signDestinationPayload('{}', rotation));
expectAssignable<s18.SignatureSecrets>('one-secret');
const level: s18.LogLevel = 'debug';
expectType<s18.Logger>(s18.createConsoleLogger({ level }));
expectType<s18.Logger>(s18.createConsoleLogger({ level: undefined }));
expectError<s18.LogLevel>('verbose');

// Twentieth session: one Redis URL check for bullmq()'s `connection` and `fc-async dev --redis`.
expectType<URL>(s18.checkRedisUrl('redis://127.0.0.1:6379/0', { name: 'connection' }));
expectType<URL>(s18.checkRedisUrl('redis://127.0.0.1:6379/0', { name: '--redis', readsQuery: false }));
expectAssignable<s18.RedisUrlCheck>({ name: 'connection', readsQuery: undefined });
expectError(s18.checkRedisUrl('redis://127.0.0.1:6379/0'));
