export { type NodeHandler, runNodeHandler } from './bridge.js';
export { badRequest, FcAsyncError, isFcAsyncError } from './errors.js';
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
export {
  type AdapterHooks,
  createFcHandler,
  errorResponse,
  type FcHandler,
  type FcHandlerOptions,
  jsonResponse,
} from './handler.js';
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
  isValidTaskId,
  setInvocation,
} from './invocation.js';
export { createConsoleLogger, errorFields, type Logger, silentLogger } from './logger.js';
export { buildQuery, encodePath, type FcRequest, fixBodyHeaders } from './request.js';
export {
  type BodyKind,
  type BridgeResponse,
  createBodyClassifier,
  DEFAULT_TEXT_CONTENT_TYPES,
  isNoBodyResponse,
  type ResponseBody,
} from './response.js';
