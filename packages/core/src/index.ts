export { isInvocationAbort, logAppError, nestAppHint, thrownError, thrownText } from './app-errors.js';
export { functionArn } from './async/arn.js';
export {
  ASYNC_TASK_STATUSES,
  type AsyncBackend,
  type BackendContext,
  type JobResult,
  type QueueDriver,
  type QueueJob,
  type TaskPage,
  type TaskPatch,
  type TaskQuery,
  type TaskRecord,
  type TaskStore,
  TERMINAL_STATUSES,
  type TransitionOptions,
  toAsyncTask,
} from './async/backend.js';
export {
  decodeCompactRecord,
  encodeCompactRecord,
  encodeRequestHead,
  patchedRecord,
  transitionApplies,
  transitionEvents,
  transitionedRecord,
} from './async/compact-record.js';
export {
  AsyncEngine,
  type AsyncInvokeConfig,
  type AttemptOutcome,
  buildDestinationRecord,
  type CloseOptions,
  type Destinations,
  type EngineEvent,
  type EngineHooks,
  type TaskApi,
} from './async/engine.js';
export { type MemoryBackendOptions, MemoryTaskStore, memory, PQueueDriver } from './async/memory.js';
export {
  type AsyncMode,
  type AsyncOptions,
  type BackoffOptions,
  backoffDelay,
  type ResolvedAsyncOptions,
  type ResolvedBackoff,
  resolveAsyncOptions,
  resolveMode,
} from './async/options.js';
export { decodeCursor, encodeCursor, normaliseQuery, pageTasks } from './async/paging.js';
export {
  type CapturedRequest,
  captureRequest,
  createRedactor,
  DEFAULT_REDACTED_HEADERS,
  replayRequest,
  serializeRequest,
} from './async/payload.js';
export { isPlatformFailure, PlatformAsync } from './async/platform.js';
export { RetentionPruner } from './async/retention.js';
export {
  integerOption,
  type ResolvedRetentionOptions,
  type RetentionOptions,
  resolveRetentionOptions,
} from './async/retention-options.js';
// Internal: for @fc-async/local's emulator, not public API (see start-hold.ts).
export {
  type EngineStartHold,
  type HeldDefaults,
  holdEngineStarts,
  holdLateEngines,
  type LateEngineHold,
} from './async/start-hold.js';
export { type NodeHandler, runNodeHandler } from './bridge.js';
export {
  checkDestinationSignature,
  type DeliverOptions,
  type DeliveryResult,
  type Destination,
  type DestinationContext,
  DestinationError,
  type DestinationOutcome,
  deliverRecord,
  type FcClientConfig,
  type FcFunctionDestinationOptions,
  type FcInvokeClient,
  type FunctionDestinationOptions,
  type FunctionTarget,
  fcFunctionDestination,
  functionDestination,
  type HttpDestinationOptions,
  httpDestination,
  isDestinationError,
  isRetryableStatus,
  type JsonlDestinationOptions,
  jsonlDestination,
  parseFunctionTarget,
  SIGNATURE_HEADER,
  type SignatureCheck,
  type SignatureFailure,
  type SignatureSecrets,
  signDestinationPayload,
  type VerifySignatureOptions,
  verifyDestinationSignature,
} from './destinations/index.js';
export { MAX_TIMER_MS } from './destinations/validate.js';
export {
  asyncBodyTooLarge,
  badRequest,
  type DestinationErrorCode,
  FcAsyncError,
  type FcAsyncErrorCode,
  isFcAsyncError,
} from './errors.js';
export type {
  AsyncTask,
  AsyncTaskEvent,
  AsyncTaskStatus,
  DestinationCondition,
  DestinationRecord,
  Fc2Request,
  Fc2Response,
  FcContext,
  FcCredentials,
  FcHttpEvent,
  FcHttpRequestContext,
  FcHttpResult,
} from './fc-types.js';
export { isFc2Call, readFc2Request, writeFc2Response } from './fc2.js';
export { cookieHeaderName, flattenHeaders, parseFcEvent, toFcHttpResult } from './fc3.js';
export { type FcHttpEventInit, fcHttpEvent, fcQueryParameters, isFcTextBody } from './fc3-event.js';
export { makeFolderSync } from './folders.js';
export {
  type AdapterHooks,
  createFcHandler,
  errorResponse,
  type FcHandler,
  type FcHandlerOptions,
  jsonResponse,
} from './handler.js';
export { checkHandlerOptions } from './handler-options.js';
export { isFcRequestId, newRequestId } from './ids.js';
export {
  buildInvocation,
  type Detection,
  type Detector,
  detectInvocation,
  getInvocation,
  type HeaderBag,
  type Invocation,
  type InvocationType,
  isMiddlewareReplay,
  isValidTaskId,
  setInvocation,
} from './invocation.js';
export {
  createConsoleLogger,
  errorFields,
  type Logger,
  type LogLevel,
  logValue,
  maskUrl,
  type ObjectFirstLog,
  objectFirstLogger,
  silentLogger,
} from './logger.js';
export { checkRedisUrl, type RedisUrlCheck } from './redis-url.js';
export { buildQuery, encodePath, type FcRequest, fixBodyHeaders } from './request.js';
export {
  type BodyKind,
  type BridgeResponse,
  createBodyClassifier,
  DEFAULT_TEXT_CONTENT_TYPES,
  isNoBodyResponse,
  type ResponseBody,
} from './response.js';
export {
  addPreStopHook,
  createFcRuntime,
  FC_STATUS_HEADER,
  type FcAsyncControls,
  type FcListenOptions,
  type FcRuntime,
  type FcRuntimeOptions,
  type FcServer,
  type FcServerHooks,
  isAnsweredInFront,
  listenFc,
  type PreStopHook,
  type ReplayTarget,
  readNodeRequest,
  writeBridgeResponse,
} from './runtime/index.js';
export {
  createTracing,
  extractFc2TraceContext,
  type InvocationSpan,
  type InvocationSpanEnd,
  type RouteOf,
  type Tracing,
  type TracingOptions,
  type TracingRequest,
  type TracingRequestInfo,
  type TracingResponseInfo,
} from './tracing/index.js';
