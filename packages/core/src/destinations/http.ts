import type { DestinationRecord } from '../fc-types.js';
import { maskUrl } from '../logger.js';
import { onAbort } from '../on-abort.js';
import { recordJson } from './record.js';
import { SIGNATURE_HEADER, type SignatureSecrets, secretList, signDestinationPayload } from './signature.js';
import { type Destination, type DestinationContext, DestinationError, isRetryableStatus } from './types.js';
import { describe, objectOption, retriesOption, timeoutOption } from './validate.js';

/**
 * Options of {@link httpDestination}.
 *
 * @example
 * ```ts
 * const options: HttpDestinationOptions = { secret: process.env.HOOK_SECRET!, headers: { 'x-source': 'fc-async' }, timeoutMs: 5000 };
 * const onFailure = httpDestination('https://hooks.example.com/fc-failed', options);
 * ```
 */
export interface HttpDestinationOptions {
  /**
   * Signs each post with the `fc-async-signature` header (see {@link SIGNATURE_HEADER} for the
   * format). Several secrets give several `v1` values, for rotation.
   * @default no signature
   */
  secret?: SignatureSecrets | undefined;
  /** Extra request headers. `content-type` and `fc-async-signature` are always set by fc-async. @default {} */
  headers?: Record<string, string> | undefined;
  /** Time allowed for one post, response included, in milliseconds. @default 10000 */
  timeoutMs?: number | undefined;
  /** Retries {@link deliverRecord} allows after a retryable failure. @default 3 */
  retries?: number | undefined;
}

/**
 * A destination that POSTs the record as JSON (`content-type: application/json`) with the global
 * `fetch`. A 2xx answer is a delivery. 5xx, 408, 429, network errors and timeouts fail with a
 * retryable {@link DestinationError}; any other status (4xx, and 3xx since redirects are not
 * followed) fails without retry. With `secret`, every post carries
 * `fc-async-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${rawBody}`)>`, which
 * the receiver checks with {@link verifyDestinationSignature}.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, {
 *   destinations: { onFailure: httpDestination('https://hooks.example.com/fc-failed', { secret: process.env.HOOK_SECRET, timeoutMs: 5000 }) },
 * });
 * ```
 */
export function httpDestination(url: string | URL, options?: HttpDestinationOptions): Destination {
  // Node.js 16 (an FC nodejs16 runtime) has neither: every delivery would fail with a ReferenceError.
  if (typeof fetch !== 'function' || typeof Headers !== 'function') {
    throw new TypeError('httpDestination() needs the fetch API: run on Node.js 20.11 or newer');
  }
  const target = parseUrl(url);
  const opts = objectOption('options', options, 'httpDestination()', ['secret', 'headers', 'timeoutMs', 'retries']);
  const secrets = opts.secret === undefined ? undefined : secretList(opts.secret, 'secret');
  const timeoutMs = timeoutOption('timeoutMs', opts.timeoutMs, 10_000);
  const maxRetries = retriesOption('retries', opts.retries);
  const extra = headerOption(opts.headers);
  const href = target.href;
  const origin = target.origin;

  async function httpDestination(record: DestinationRecord, context?: DestinationContext): Promise<void> {
    const body = recordJson(record);
    const headers = new Headers(extra);
    headers.set('content-type', 'application/json');
    if (secrets) headers.set(SIGNATURE_HEADER, signDestinationPayload(body, secrets));
    // One controller for the timeout and the caller's signal, both let go when the post ends, not
    // AbortSignal.timeout() with AbortSignal.any(): on Node 20 those stay alive until the timer
    // fires (about 3.3 KB a post for its timeoutMs), and any() leaves an entry on each source for
    // good (a caller's long-lived signal grew with every post).
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException(`No answer within ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    const outer = context?.signal;
    if (outer?.aborted) controller.abort(outer.reason);
    const forget = outer && onAbort(outer, () => controller.abort(outer.reason));
    let response: Response;
    try {
      try {
        response = await fetch(href, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
      } catch (error) {
        throw fetchError(error, origin, timeoutMs, timedOut);
      }
      // Free the connection: the answer's body is not used.
      await response.body?.cancel().catch(() => {});
    } finally {
      clearTimeout(timer);
      forget?.();
    }
    if (response.status >= 200 && response.status < 300) return;
    throw new DestinationError('DestinationHttpError', `HTTP ${response.status} from ${origin}`, {
      retryable: isRetryableStatus(response.status),
      status: response.status,
    });
  }
  return Object.assign(httpDestination, { maxRetries, label: `http:${origin}` });
}

function parseUrl(url: unknown): URL {
  let parsed: URL | undefined;
  try {
    parsed = url instanceof URL ? new URL(url.href) : typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new TypeError(
      `Expected \`url\` to be an absolute http(s) URL, got \`${describe(typeof url === 'string' || url instanceof URL ? maskUrl(String(url)) : url)}\``,
    );
  }
  if (parsed.username || parsed.password) {
    throw new TypeError('Expected `url` without credentials; pass them in `headers` (e.g. authorization) instead');
  }
  if (parsed.port !== '' && BAD_PORTS.has(Number(parsed.port))) {
    throw new TypeError(`Expected \`url\` to use a port fetch allows, got \`${parsed.port}\``);
  }
  return parsed;
}

/**
 * Ports fetch refuses to connect to (the Fetch standard's "bad ports", and 0): a webhook on one
 * would fail every delivery with `bad port`.
 */
const BAD_PORTS = new Set([
  0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Headers fetch sets itself and refuses (or, for `content-length`, obeys and cuts the body) when given. */
const FRAMING_HEADERS = new Set([
  'connection',
  'content-length',
  'expect',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);

function headerOption(headers: unknown): Record<string, string> {
  if (headers === undefined) return {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TypeError(`Expected \`headers\` to be an object of strings, got \`${describe(headers)}\``);
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') {
      throw new TypeError(`Expected \`headers.${name}\` to be a string, got \`${typeof value}\``);
    }
    if (FRAMING_HEADERS.has(name.toLowerCase())) {
      throw new TypeError(
        `Expected \`headers\` not to set \`${name}\`: fetch sets the connection and body framing headers itself`,
      );
    }
    // Fail now, not on the first delivery, for names or values fetch refuses; a value is never
    // quoted (an authorization header's token with a stray line break would be in the message).
    if (!fetchTakes(name, 'x')) {
      throw new TypeError(`Expected \`headers\` to hold valid HTTP header names, got ${JSON.stringify(name)}`);
    }
    const wide = firstWide(value);
    if (wide !== undefined) {
      // Its code point and place say what to encode without quoting the value (it may be a token).
      throw new TypeError(
        `Expected \`headers.${name}\` to be Latin-1 (ISO-8859-1) only, got ${wide.codePoint} at character ${wide.at}; encode the value (e.g. encodeURIComponent) and decode it in the receiver; the value is not shown`,
      );
    }
    if (!fetchTakes(name, value)) {
      throw new TypeError(
        `Expected \`headers.${name}\` to be a valid HTTP header value (no CR, LF or NUL); the value is not shown`,
      );
    }
    out[name] = value;
  }
  return out;
}

/**
 * The first character of `value` above U+00FF, which a header cannot carry (fetch refuses it as an
 * invalid value, as it does a line break), as `U+676D` and its place counting from 1.
 */
function firstWide(value: string): { codePoint: string; at: number } | undefined {
  let at = 0;
  for (const char of value) {
    at++;
    const code = char.codePointAt(0) as number;
    if (code > 0xff) return { codePoint: `U+${code.toString(16).toUpperCase().padStart(4, '0')}`, at };
  }
  return undefined;
}

function fetchTakes(name: string, value: string): boolean {
  try {
    new Headers([[name, value]]);
    return true;
  } catch {
    return false;
  }
}

function fetchError(error: unknown, origin: string, timeoutMs: number, timedOut: boolean): DestinationError {
  const name = (error as { name?: unknown } | null)?.name;
  if (timedOut || name === 'TimeoutError') {
    return new DestinationError('DestinationTimeout', `No answer from ${origin} within ${timeoutMs} ms`, {
      retryable: true,
      cause: error,
    });
  }
  if (name === 'AbortError') {
    return new DestinationError('DestinationAborted', `Post to ${origin} aborted`, { retryable: false, cause: error });
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const detail =
    typeof cause?.code === 'string' ? cause.code : String(cause?.message ?? (error as Error)?.message ?? error);
  return new DestinationError('DestinationNetworkError', `Network error posting to ${origin}: ${detail}`, {
    retryable: true,
    cause: error,
  });
}
