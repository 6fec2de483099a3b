/**
 * A collected response body: a string when the app wrote one UTF-8 string, else bytes.
 *
 * @example
 * ```ts
 * const text: ResponseBody = 'ok';
 * const binary: ResponseBody = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
 * ```
 */
export type ResponseBody = string | Buffer;

/**
 * A response as the bridge collected it.
 *
 * @example
 * ```ts
 * const response: BridgeResponse = { statusCode: 201, headers: { 'content-type': 'application/json' }, body: '{"id":1}' };
 * ```
 */
export interface BridgeResponse {
  statusCode: number;
  /** Lower-cased names; `set-cookie` and other repeated headers as arrays. */
  headers: Record<string, string | string[] | number | undefined>;
  body: ResponseBody;
}

/**
 * How a response body travels back to FC.
 *
 * @example
 * ```ts
 * const classify = createBodyClassifier(['text/*', 'application/json']);
 * const kind: BodyKind = classify({ 'content-type': 'image/png' }); // 'binary'
 * ```
 */
export type BodyKind = 'text' | 'binary';

/**
 * The content types sent to FC as text by default; everything else goes base64-encoded.
 * `*` matches any run of characters. A `charset` other than UTF-8 or ASCII, or any
 * `content-encoding` but `identity`, makes a body binary whatever its type.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, { textContentTypes: [...DEFAULT_TEXT_CONTENT_TYPES, 'application/vnd.api+json'] });
 * ```
 */
export const DEFAULT_TEXT_CONTENT_TYPES: readonly string[] = Object.freeze([
  'text/*',
  'application/json',
  'application/*+json',
  'application/xml',
  'application/*+xml',
  'application/javascript',
  'application/ecmascript',
  'application/x-www-form-urlencoded',
  'application/graphql',
  'application/x-ndjson',
  'application/yaml',
  'image/svg+xml',
]);

/**
 * Compiles a list of content-type patterns into a classifier of response headers.
 *
 * @example
 * ```ts
 * const classify = createBodyClassifier(['text/*', 'application/json']);
 * classify({ 'content-type': 'image/png' }); // 'binary'
 * ```
 */
export function createBodyClassifier(
  patterns: readonly (string | RegExp)[] = DEFAULT_TEXT_CONTENT_TYPES,
): (headers: Record<string, unknown>) => BodyKind {
  if (!Array.isArray(patterns)) {
    throw new TypeError(
      `Expected \`textContentTypes\` to be an array of content types (strings or RegExps), got \`${typeof patterns}\``,
    );
  }
  patterns.forEach((p: unknown, i) => {
    if (typeof p !== 'string' && !(p instanceof RegExp)) {
      throw new TypeError(
        `Expected \`textContentTypes[${i}]\` to be a content type (a string or a RegExp), got \`${String(p)}\``,
      );
    }
  });
  const regexes = patterns.map((p) =>
    typeof p === 'string'
      ? new RegExp(
          `^${p
            .toLowerCase()
            .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '.*')}$`,
        )
      : p,
  );
  const cache = new Map<string, BodyKind>();
  const classifyType = (contentType: string): BodyKind => {
    const [type = '', ...params] = contentType.toLowerCase().split(';');
    const mime = type.trim();
    if (!regexes.some((r) => r.test(mime))) return 'binary';
    for (const param of params) {
      const [k, v] = param.split('=');
      if (k?.trim() === 'charset') {
        const charset = v?.trim().replace(/"/g, '');
        if (charset && !['utf-8', 'utf8', 'us-ascii', 'ascii'].includes(charset)) return 'binary';
      }
    }
    return 'text';
  };
  return function classifyBody(headers) {
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && String(encoding).toLowerCase() !== 'identity') return 'binary';
    const contentType = headers['content-type'];
    if (contentType === undefined) return 'binary';
    const key = String(contentType);
    let kind = cache.get(key);
    if (kind === undefined) {
      kind = classifyType(key);
      if (cache.size < 256) cache.set(key, kind);
    }
    return kind;
  };
}

/**
 * HEAD requests and 1xx, 204 and 304 responses carry no body.
 *
 * @example
 * ```ts
 * isNoBodyResponse('HEAD', 200); // true
 * isNoBodyResponse('GET', 204); // true
 * isNoBodyResponse('GET', 200); // false
 * ```
 */
export function isNoBodyResponse(method: string, statusCode: number): boolean {
  return method === 'HEAD' || statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200);
}

const NO_BODY = Buffer.alloc(0);

/**
 * The answer as its caller gets it: without the body a `HEAD` request's or a 1xx, 204 or 304
 * response's must not carry (an app may write one; the sync answer drops it, and so do a task's
 * `returnPayload` and its destination record).
 */
export function answerAsSent(method: string, response: BridgeResponse): BridgeResponse {
  if (response.body.length === 0 || !isNoBodyResponse(method, response.statusCode)) return response;
  return { ...response, body: NO_BODY };
}

/**
 * The header a custom runtime answers to report a FAILED invocation to FC (fc-contract section
 * 5): without it FC counts any answer, even a 500, as a success and never retries it.
 *
 * @example
 * ```ts
 * const response = await fetch('http://127.0.0.1:9000/jobs');
 * const failed = response.headers.get(FC_STATUS_HEADER) === '404';
 * ```
 */
export const FC_STATUS_HEADER = 'x-fc-status';

/**
 * Whether an answer carries `x-fc-status: 404`, the header by which a custom runtime tells FC that
 * the invocation failed (FC then retries it and sends it to onFailure, whatever its status).
 *
 * @example
 * ```ts
 * hasFcFailureStatus({ statusCode: 200, headers: { 'x-fc-status': '404' }, body: '' }); // true
 * hasFcFailureStatus({ statusCode: 500, headers: {}, body: '' }); // false
 * ```
 */
export function hasFcFailureStatus(response: BridgeResponse): boolean {
  const value = response.headers[FC_STATUS_HEADER];
  if (value === undefined) return false;
  return (Array.isArray(value) ? value : [value]).some((v) => String(v).trim() === '404');
}
