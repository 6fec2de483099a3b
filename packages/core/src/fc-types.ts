/**
 * Function Compute contract types, owned here so that the public `.d.ts` compiles without any
 * vendor typings installed. Shapes follow fc-contract sections 3, 4, 6 and 7.
 *
 * @packageDocumentation
 */

/**
 * The event an FC 3.0 built-in runtime passes to an HTTP-triggered handler, once parsed.
 * FC hands it over as a Buffer holding this JSON.
 *
 * @example
 * ```ts
 * const event: FcHttpEvent = {
 *   version: 'v1', rawPath: '/hello', headers: { Accept: '*\/*' }, queryParameters: {},
 *   body: '', isBase64Encoded: false,
 *   requestContext: { accountId: '123', domainName: 'x.cn-hangzhou.fcapp.run', domainPrefix: 'x',
 *     http: { method: 'GET', path: '/hello', protocol: 'HTTP/1.1', sourceIp: '10.0.0.1', userAgent: 'curl' },
 *     requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', time: '2023-09-05T06:41:11Z', timeEpoch: '1693896071895' },
 * };
 * ```
 */
export interface FcHttpEvent {
  version?: string | undefined;
  /** URL-encoded path. */
  rawPath: string;
  body?: string | undefined;
  isBase64Encoded?: boolean | undefined;
  /** Canonicalised keys; repeated headers joined with commas. */
  headers?: Record<string, string> | undefined;
  /** Decoded values; repeated parameters joined with commas. */
  queryParameters?: Record<string, string> | undefined;
  requestContext?: FcHttpRequestContext | undefined;
}

/**
 * `event.requestContext` of an FC 3.0 HTTP event.
 *
 * @example
 * ```ts
 * declare const event: FcHttpEvent;
 * const context: FcHttpRequestContext | undefined = event.requestContext;
 * console.log(context?.http.method, context?.http.sourceIp);
 * ```
 */
export interface FcHttpRequestContext {
  accountId?: string | undefined;
  domainName?: string | undefined;
  domainPrefix?: string | undefined;
  http: {
    method: string;
    /** Decoded path. */
    path?: string | undefined;
    protocol?: string | undefined;
    sourceIp?: string | undefined;
    userAgent?: string | undefined;
  };
  requestId?: string | undefined;
  time?: string | undefined;
  /** Milliseconds since the epoch, as a string. */
  timeEpoch?: string | undefined;
}

/**
 * What an FC 3.0 HTTP handler returns. `headers` is single-valued: see docs/adapters.md for how
 * several `Set-Cookie` values are carried.
 *
 * @example
 * ```ts
 * const result: FcHttpResult = { statusCode: 200, headers: { 'content-type': 'text/plain' }, isBase64Encoded: false, body: 'ok' };
 * ```
 */
export interface FcHttpResult {
  statusCode: number;
  headers: Record<string, string>;
  isBase64Encoded: boolean;
  body: string;
}

/**
 * Credentials FC hands to the function. They never leave the handler: not in records, logs or spans.
 *
 * @example
 * ```ts
 * declare const context: FcContext;
 * const credentials: FcCredentials | undefined = context.credentials; // never logged by fc-async
 * ```
 */
export interface FcCredentials {
  accessKeyId?: string | undefined;
  accessKeySecret?: string | undefined;
  securityToken?: string | undefined;
}

/**
 * The `context` argument of FC built-in runtimes (3.0, with the 2.0 additions optional).
 *
 * @example
 * ```ts
 * const context: FcContext = { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', region: 'cn-hangzhou',
 *   accountId: '123', function: { name: 'transcode' }, service: { qualifier: 'LATEST' } };
 * ```
 */
export interface FcContext {
  requestId?: string | undefined;
  credentials?: FcCredentials | undefined;
  function?:
    | {
        name?: string | undefined;
        handler?: string | undefined;
        memory?: number | undefined;
        timeout?: number | undefined;
      }
    | undefined;
  service?:
    | {
        name?: string | undefined;
        logProject?: string | undefined;
        logStore?: string | undefined;
        qualifier?: string | undefined;
        versionId?: string | undefined;
      }
    | undefined;
  region?: string | undefined;
  accountId?: string | undefined;
  logger?: unknown;
  /** FC 2.0 only. */
  tracing?:
    | {
        openTracingSpanContext?: string | undefined;
        openTracingSpanBaggages?: Record<string, string> | undefined;
        jaegerEndpoint?: string | undefined;
      }
    | undefined;
  /** FC 3.0 exposes the retry count of async invocations here in some runtimes; fc-async reads it as `x-fc-retry-count`. */
  retryCount?: number | undefined;
}

/**
 * FC 2.0 HTTP request: a readable stream with these fields. Newer runtimes also set `body`.
 *
 * @example
 * ```ts
 * declare const req: Fc2Request;
 * console.log(req.method, req.path, req.queries);
 * ```
 */
export interface Fc2Request extends AsyncIterable<unknown> {
  headers: Record<string, string | string[] | undefined>;
  path: string;
  queries?: Record<string, string | string[]> | undefined;
  method: string;
  clientIP?: string | undefined;
  url?: string | undefined;
  body?: Buffer | string | undefined;
  on?(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * FC 2.0 HTTP response object.
 *
 * @example
 * ```ts
 * declare const resp: Fc2Response;
 * resp.setStatusCode(200); resp.setHeader('content-type', 'text/plain'); resp.send('ok');
 * ```
 */
export interface Fc2Response {
  setStatusCode(code: number): void;
  setHeader(name: string, value: string): void;
  deleteHeader?(name: string): void;
  send(body: Buffer | string | NodeJS.ReadableStream): void;
}

/**
 * Task statuses of FC's async tasks (API 2023-03-30).
 *
 * @example
 * ```ts
 * declare const handler: FcHandler;
 * const status: AsyncTaskStatus = 'Failed';
 * const { tasks } = await handler.tasks.list({ status });
 * ```
 */
export type AsyncTaskStatus =
  | 'Enqueued'
  | 'Dequeued'
  | 'Running'
  | 'Succeeded'
  | 'Failed'
  | 'Stopping'
  | 'Stopped'
  | 'Expired'
  | 'Invalid'
  | 'Retrying';

/**
 * One entry of `AsyncTask.events`.
 *
 * @example
 * ```ts
 * declare const task: AsyncTask;
 * const last: AsyncTaskEvent | undefined = task.events.at(-1);
 * console.log(last?.status, last?.eventDetail);
 * ```
 */
export interface AsyncTaskEvent {
  eventId: number;
  status: AsyncTaskStatus;
  timestamp: number;
  eventDetail?: string;
}

/**
 * An async task record in FC's `AsyncTask` shape. Its one fc-async extension is `traceId`
 * (docs/async.md); FC clients ignore it.
 *
 * @example
 * ```ts
 * declare const task: AsyncTask;
 * if (task.status === 'Failed') console.log(task.taskErrorMessage, task.alreadyRetriedTimes);
 * ```
 */
export interface AsyncTask {
  taskId: string;
  requestId: string;
  status: AsyncTaskStatus;
  functionArn: string;
  qualifier: string;
  instanceId?: string;
  startedTime?: number;
  endTime?: number;
  durationMs?: number;
  alreadyRetriedTimes: number;
  /**
   * How the task's destination call ended: `Succeeded` (every destination took the record) or
   * `Failed`; absent while none was made (none configured, or not yet). A string, as in FC's SDK.
   */
  destinationStatus?: string;
  taskErrorMessage?: string;
  taskPayload?: string;
  returnPayload?: string;
  events: AsyncTaskEvent[];
  /** fc-async extension: the trace id of the task's accept span, when tracing is on. */
  traceId?: string;
}

/**
 * `condition` values of a destination record.
 *
 * @example
 * ```ts
 * declare const record: DestinationRecord;
 * const condition: DestinationCondition = record.requestContext.condition;
 * if (condition === 'EventAgeExceeded') console.warn('the task expired before it ran');
 * ```
 */
export type DestinationCondition =
  | ''
  | 'UnhandledInvocationError'
  | 'InvocationError'
  | 'EventAgeExceeded'
  | 'Stopped'
  | 'FunctionResourceExhausted';

/**
 * The record FC sends to `onSuccess` / `onFailure` destinations (fc-contract section 6).
 *
 * @example
 * ```ts
 * declare const record: DestinationRecord;
 * if (record.requestContext.condition !== '') console.error('task failed', record.requestContext.requestId);
 * ```
 */
export interface DestinationRecord {
  timestamp: number;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: DestinationCondition;
    approximateInvokeCount: number;
  };
  requestPayload: string;
  responseContext: { statusCode: number; functionError: string };
  responsePayload: string;
}
