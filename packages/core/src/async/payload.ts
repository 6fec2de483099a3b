import { isUtf8 } from 'node:buffer';
import type { FcRequest } from '../request.js';
import { fixBodyHeaders } from '../request.js';
import { createBodyClassifier } from '../response.js';

/**
 * A request as an async task keeps it: what the app needs to replay it, with the redacted
 * headers already removed.
 *
 * @example
 * ```ts
 * declare const record: TaskRecord;
 * const captured: CapturedRequest = record.payload;
 * console.log(captured.method, captured.url);
 * ```
 */
export interface CapturedRequest {
  method: string;
  /** Encoded path plus query. */
  url: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  remoteAddress?: string | undefined;
  /**
   * The request was accepted by an `fcAsync()` middleware, after every middleware in front of it
   * had passed it: its attempts are marked for `isMiddlewareReplay`. Stored with the task, so that
   * it holds whichever deployment sharing the store runs it. Set by the engine's accept only, never
   * from the request; not part of `taskPayload` nor of a destination record's `requestPayload`.
   */
  acceptedByMiddleware?: true | undefined;
}

/**
 * Headers that never enter a task record, a destination record, a log line or a span: FC's
 * credential headers and the caller's authorisation (with the STS token an Alibaba Cloud signature
 * is used with) and cookies. `redactHeaders` extends it.
 *
 * @example
 * ```ts
 * DEFAULT_REDACTED_HEADERS.includes('authorization'); // true
 * const redact = createRedactor(['x-api-key']); // these and the defaults
 * ```
 */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = Object.freeze([
  'x-fc-access-key-id',
  'x-fc-access-key-secret',
  'x-fc-security-token',
  'authorization',
  'proxy-authorization',
  'x-acs-security-token',
  'cookie',
  'set-cookie',
]);

/** Headers that only steer FC's gateway and mean nothing once the request is queued. */
const GATEWAY_HEADERS = new Set(['x-fc-invocation-type', 'x-fc-async-delay', 'x-fc-retry-count', 'x-fc-log-type']);

/**
 * A function that copies headers without the redacted ones (case-insensitive).
 *
 * @example
 * ```ts
 * const redact = createRedactor(['x-api-key']);
 * redact({ authorization: 'Bearer x', accept: '*\/*' }); // { accept: '*\/*' }
 * ```
 */
export function createRedactor(
  extra: readonly string[] = [],
): (headers: FcRequest['headers']) => Record<string, string | string[]> {
  const names = new Set([...DEFAULT_REDACTED_HEADERS, ...headerNames(extra)]);
  const redact = function redact(headers: FcRequest['headers']) {
    return copyHeaders(headers, names, undefined);
  };
  captureDrops.set(redact, new Set([...names, ...GATEWAY_HEADERS]));
  return redact;
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `redactHeaders` lower-cased, checked eagerly: a name that matches no header (` X-Api-Key`)
 * would let its value through silently.
 */
function headerNames(extra: unknown): string[] {
  if (!Array.isArray(extra)) {
    throw new TypeError(`Expected \`redactHeaders\` to be an array of header names, got \`${typeof extra}\``);
  }
  return extra.map((name: unknown, i) => {
    if (typeof name !== 'string' || !TOKEN.test(name)) {
      const got = typeof name === 'string' ? JSON.stringify(name.slice(0, 64)) : `\`${typeof name}\``;
      throw new TypeError(`Expected \`redactHeaders[${i}]\` to be a header name, got ${got}`);
    }
    return name.toLowerCase();
  });
}

/**
 * What a capture drops for each redactor of {@link createRedactor}: its names and the gateway
 * headers, so that a capture copies the headers once, with one lookup per header.
 */
const captureDrops = new WeakMap<object, ReadonlySet<string>>();

/** `headers` with lower-cased names, without undefined values and without the names in `drop` or `alsoDrop`. */
function copyHeaders(
  headers: FcRequest['headers'],
  drop: ReadonlySet<string>,
  alsoDrop: ReadonlySet<string> | undefined,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (drop.has(lower) || alsoDrop?.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

/**
 * Captures an accepted request for its task (headers redacted, gateway headers dropped).
 * `acceptedByMiddleware`: an `fcAsync()` middleware accepted it (see
 * {@link CapturedRequest.acceptedByMiddleware}); nothing in `request` can set it.
 *
 * @example
 * ```ts
 * const request = parseFcEvent(fcHttpEvent({ method: 'POST', url: '/jobs', body: { video: 'a.mov' } }));
 * const captured = captureRequest(request, createRedactor());
 * ```
 */
export function captureRequest(
  request: FcRequest,
  redact: (headers: FcRequest['headers']) => Record<string, string | string[]>,
  acceptedByMiddleware = false,
): CapturedRequest {
  const captured: CapturedRequest = {
    method: request.method,
    url: request.url,
    headers: captureHeaders(request.headers, redact),
    body: request.body,
    remoteAddress: request.remoteAddress,
  };
  // Added only when set: the payloads of a createHandler() deployment keep the shape they had.
  if (acceptedByMiddleware) captured.acceptedByMiddleware = true;
  return captured;
}

/**
 * The redacted headers without the gateway headers, in one copy for a redactor of
 * {@link createRedactor}. Copied rather than deleted from: `delete` turns an object into a slow
 * dictionary that every later read, copy and `JSON.stringify` of the task pays for, and that
 * takes more memory while the task waits.
 */
function captureHeaders(
  headers: FcRequest['headers'],
  redact: (headers: FcRequest['headers']) => Record<string, string | string[]>,
): Record<string, string | string[]> {
  const drop = captureDrops.get(redact);
  if (drop) return copyHeaders(headers, drop, undefined);
  const redacted = redact(headers);
  let found = false;
  for (const name in redacted) {
    if (GATEWAY_HEADERS.has(name)) {
      found = true;
      break;
    }
  }
  if (!found) return redacted;
  const out: Record<string, string | string[]> = {};
  for (const name in redacted) {
    if (!GATEWAY_HEADERS.has(name)) out[name] = redacted[name] as string | string[];
  }
  return out;
}

const isTextBody = createBodyClassifier();

/**
 * The string form of a captured request: `requestPayload` of destination records and
 * `taskPayload` of tasks. JSON `{ method, url, headers, body, isBase64Encoded }`; the body is
 * text for text content types, else base64 (docs/destinations.md). An event invocation's (FC's
 * `x-fc-control-path: /invoke`) is its event: the body as text, or base64 when not UTF-8.
 *
 * @example
 * ```ts
 * declare const captured: CapturedRequest;
 * JSON.parse(serializeRequest(captured)).url; // '/transcode?format=mp4'
 * ```
 */
export function serializeRequest(request: CapturedRequest): string {
  // An event invocation (FC's control path `/invoke`: an event function, by InvokeFunction or as a
  // destination): its payload is the event itself, as FC records it, not an HTTP envelope around it.
  if (request.headers['x-fc-control-path'] === '/invoke') {
    return isUtf8(request.body) ? request.body.toString('utf8') : request.body.toString('base64');
  }
  // A text type whose bytes are not UTF-8 (Latin-1 form data) goes base64, unchanged, as an answer does.
  const text = request.body.length === 0 || (isTextBody(request.headers) === 'text' && isUtf8(request.body));
  return JSON.stringify({
    method: request.method,
    url: request.url,
    headers: request.headers,
    body: text ? request.body.toString('utf8') : request.body.toString('base64'),
    isBase64Encoded: !text,
  });
}

/**
 * The request an attempt replays through the app.
 *
 * @example
 * ```ts
 * declare const record: TaskRecord;
 * const request = replayRequest(record.payload, { requestId: record.requestId, taskId: record.taskId, attempt: 1 });
 * ```
 */
export function replayRequest(
  captured: CapturedRequest,
  ids: { requestId: string; taskId: string; attempt: number },
): FcRequest {
  // Object.assign, not a spread: V8 adds properties to a spread copy on a slow path (about 2 µs each).
  const headers: FcRequest['headers'] = Object.assign({}, captured.headers);
  headers['x-fc-request-id'] = ids.requestId;
  headers['x-fc-async-task-id'] = ids.taskId;
  headers['x-fc-retry-count'] = String(ids.attempt);
  fixBodyHeaders(headers, captured.body);
  return {
    method: captured.method,
    url: captured.url,
    headers,
    body: captured.body,
    remoteAddress: captured.remoteAddress,
    requestId: ids.requestId,
  };
}
