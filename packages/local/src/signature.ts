import { createHash, createHmac, getHashes, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A request as the control plane received it, for {@link verifyAcsSignature}.
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http';
 * declare const req: IncomingMessage;
 * const request: SignedRequest = { method: 'GET', path: '/2023-03-30/functions/f/async-tasks', query: 'limit=5',
 *   headers: req.headers, body: Buffer.alloc(0) };
 * ```
 */
export interface SignedRequest {
  method: string;
  /** The raw path as it came on the wire, still percent-encoded, without the query. */
  path: string;
  /** The raw query string, without `?`. @default '' */
  query?: string;
  /** Header names in any case; values as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The exact body bytes. @default empty */
  body?: Buffer;
}

/**
 * What {@link verifyAcsSignature} found: the access key of a valid signature, or why the request
 * is refused, with the FC error code and HTTP status to answer.
 *
 * @example
 * ```ts
 * const result: SignatureResult = { ok: false, status: 403, code: 'SignatureNotMatch', message: '...' };
 * ```
 */
export type SignatureResult =
  | { ok: true; accessKeyId: string; algorithm: string; securityToken?: string }
  | { ok: false; status: number; code: string; message: string };

type Algorithm = 'ACS3-HMAC-SHA256' | 'ACS3-HMAC-SM3';

const ALGORITHMS = new Set<string>(['ACS3-HMAC-SHA256']);
if (getHashes().includes('sm3')) ALGORITHMS.add('ACS3-HMAC-SM3');

const digestOf = (algorithm: Algorithm) => (algorithm === 'ACS3-HMAC-SM3' ? 'sm3' : 'sha256');
const hash = (data: Buffer | string, algorithm: Algorithm) =>
  createHash(digestOf(algorithm)).update(data).digest('hex');
const hmac = (key: string, data: string, algorithm: Algorithm) =>
  createHmac(digestOf(algorithm), key).update(data).digest('hex');

/** RFC 3986 encoding, as the SDK applies it to canonical query values. */
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/**
 * Decoded `[key, value]` pairs of a raw query string; `undefined` for broken percent-encoding. A
 * `+` is a space, as `URLSearchParams` (the control plane's reading) has it, so that the signature
 * covers the values acted on (the SDK sends `%2B` for a plus and `%20` for a space).
 */
function queryPairs(query: string): [string, string][] | undefined {
  const pairs: [string, string][] = [];
  for (const part of query.replace(/\+/g, ' ').split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    if (key === undefined || value === undefined) return undefined;
    pairs.push([key, value]);
  }
  return pairs;
}

function canonicalQuery(pairs: [string, string][]): string {
  return [...pairs]
    .sort(([ak, av], [bk, bv]) => (ak === bk ? (av < bv ? -1 : av > bv ? 1 : 0) : ak < bk ? -1 : 1))
    .map(([k, v]) => `${k}=${rfc3986(v)}`)
    .join('&');
}

const normalisePath = (path: string) => path.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/gi, '~');

/**
 * The canonical URIs to try: the wire path normalised the SDK's way, then each segment decoded
 * and re-encoded (the SDK signs `'` literally while its HTTP stack sends `%27`).
 */
function canonicalPaths(path: string): string[] {
  const out = [normalisePath(path)];
  const segments = path.split('/').map(decode);
  if (segments.every((s) => s !== undefined)) {
    const alt = normalisePath(segments.map((s) => encodeURIComponent(s as string)).join('/'));
    if (alt !== out[0]) out.push(alt);
  }
  return out;
}

function lowerHeaders(headers: SignedRequest['headers']): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    out.set(key, [...(out.get(key) ?? []), ...(Array.isArray(value) ? value : [value])]);
  }
  return out;
}

interface Authorization {
  algorithm: string;
  accessKeyId: string;
  signedHeaders: string[];
  signature: string;
}

/** The access key id an ACS3 `Authorization` header names, `undefined` when it is not one. */
export function acsAccessKeyId(value: string): string | undefined {
  return parseAuthorization(value)?.accessKeyId;
}

function parseAuthorization(value: string): Authorization | undefined {
  const m = /^\s*(ACS3-[A-Z0-9-]+)\s+(\S.*)$/.exec(value);
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of (m[2] as string).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const accessKeyId = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!accessKeyId || !signedHeaders || !signature) return undefined;
  return {
    algorithm: m[1] as string,
    accessKeyId,
    signedHeaders: signedHeaders
      .split(';')
      .filter(Boolean)
      .map((h) => h.toLowerCase()),
    signature: signature.toLowerCase(),
  };
}

const refuse = (status: number, code: string, message: string): SignatureResult => ({
  ok: false,
  status,
  code,
  message,
});

const kind = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

/** `options` as an object of the `known` keys (a misspelt one would be ignored silently). */
function optionsObject<T extends object>(options: T, owner: string, known: readonly (keyof T & string)[]): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${kind(options)}\``);
  }
  for (const key of Object.keys(options)) {
    if (!(known as readonly string[]).includes(key)) throw new TypeError(`Unknown ${owner} option \`${key}\``);
  }
  return options;
}

/** The fields of a {@link SignedRequest} read before any header is: a crash here would name none. */
function checkRequest(request: SignedRequest): void {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new TypeError(`Expected \`request\` to be an object, got \`${kind(request)}\``);
  }
  for (const key of ['method', 'path'] as const) {
    if (typeof request[key] !== 'string') {
      throw new TypeError(`Expected \`request.${key}\` to be a string, got \`${kind(request[key])}\``);
    }
  }
  if (request.query !== undefined && typeof request.query !== 'string') {
    throw new TypeError(`Expected \`request.query\` to be a string, got \`${kind(request.query)}\``);
  }
  const { headers, body } = request;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TypeError(`Expected \`request.headers\` to be an object, got \`${kind(headers)}\``);
  }
  if (body !== undefined && !(body instanceof Uint8Array)) {
    throw new TypeError(`Expected \`request.body\` to be a Buffer, got \`${kind(body)}\``);
  }
}

/**
 * `maxSkewSeconds` and `now` checked: a NaN from either would make every date pass the skew
 * check, and a negative skew would refuse every request.
 */
function verifyOptions(options: VerifyAcsOptions): { maxSkew: number; now: number } {
  const o = optionsObject(options, 'verifyAcsSignature()', ['maxSkewSeconds', 'now', 'checkNonce']);
  const maxSkew = o.maxSkewSeconds ?? 900;
  if (typeof maxSkew !== 'number' || Number.isNaN(maxSkew) || maxSkew < 0) {
    throw new TypeError(`Expected \`maxSkewSeconds\` to be a number from 0 and up, got \`${String(maxSkew)}\``);
  }
  const now = o.now ?? Date.now();
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw new TypeError(`Expected \`now\` to be epoch milliseconds, got \`${String(now)}\``);
  }
  if (o.checkNonce !== undefined && typeof o.checkNonce !== 'function') {
    throw new TypeError(`Expected \`checkNonce\` to be a function, got \`${kind(o.checkNonce)}\``);
  }
  return { maxSkew, now };
}

/** Options of {@link verifyAcsSignature}. */
interface VerifyAcsOptions {
  maxSkewSeconds?: number;
  now?: number;
  checkNonce?: (nonce: string, expiresAt: number) => boolean;
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/**
 * Verifies the ACS3-HMAC-SHA256 (V3) signature that the official `@alicloud/fc20230330` SDK puts
 * on every request (`ACS3-HMAC-SM3` too when Node's OpenSSL has SM3). `lookupSecret` returns the
 * secret of an access key id, or `undefined` for an unknown one. Failures carry FC's codes:
 * `MissingRequiredHeader` (400), `InvalidArgument` (400: malformed or legacy `acs AK:sig`
 * authorization, an unsigned `x-acs-*` or `content-type` header, a bad date), `InvalidAccessKeyID`
 * (403), `SignatureNotMatch` (403), and ours `RequestTimeTooSkewed` (403) when `x-acs-date` is more
 * than `maxSkewSeconds` away. With `checkNonce`, a request needs `x-acs-signature-nonce` and one
 * whose valid signature carries a nonce seen before is a replay: `SignatureNonceUsed` (400).
 * `checkNonce(nonce, expiresAt)` answers `false` for a nonce it has seen; else it remembers the
 * nonce until `expiresAt` (epoch ms), the first millisecond the request's `x-acs-date` is out of the window.
 *
 * @example
 * ```ts
 * import type { IncomingMessage, ServerResponse } from 'node:http';
 * declare const req: IncomingMessage, res: ServerResponse;
 * declare const path: string, query: string, body: Buffer;
 * const result = verifyAcsSignature({ method: req.method!, path, query, headers: req.headers, body },
 *   (id) => (id === 'dev' ? 'dev-secret' : undefined));
 * if (!result.ok) res.writeHead(result.status).end(JSON.stringify({ Code: result.code, Message: result.message }));
 * ```
 */
export function verifyAcsSignature(
  request: SignedRequest,
  lookupSecret: (accessKeyId: string) => string | undefined,
  options: {
    maxSkewSeconds?: number;
    now?: number;
    checkNonce?: (nonce: string, expiresAt: number) => boolean;
  } = {},
): SignatureResult {
  return verify(request, lookupSecret, options, false);
}

/**
 * {@link verifyAcsSignature} before the body is read: the signature is checked over the
 * `x-acs-content-sha256` the request declares, so that a client without a valid signature makes
 * the server take in no body; {@link bodyMatchesSignature} then checks the body against it.
 */
export function verifyAcsHead(
  request: Omit<SignedRequest, 'body'>,
  lookupSecret: (accessKeyId: string) => string | undefined,
  options: { checkNonce?: (nonce: string, expiresAt: number) => boolean } = {},
): SignatureResult {
  return verify(request, lookupSecret, options, true);
}

/** Whether `body` is what the `x-acs-content-sha256` of a request {@link verifyAcsHead} accepted declares. */
export function bodyMatchesSignature(headers: SignedRequest['headers'], body: Buffer, algorithm: string): boolean {
  const declared = lowerHeaders(headers).get('x-acs-content-sha256')?.join(',') ?? '';
  return ALGORITHMS.has(algorithm) && declared.toLowerCase() === hash(body, algorithm as Algorithm);
}

function verify(
  request: SignedRequest,
  lookupSecret: (accessKeyId: string) => string | undefined,
  options: VerifyAcsOptions,
  declaredBody: boolean,
): SignatureResult {
  checkRequest(request);
  if (typeof lookupSecret !== 'function') {
    throw new TypeError(`Expected \`lookupSecret\` to be a function, got \`${kind(lookupSecret)}\``);
  }
  const { maxSkew, now } = verifyOptions(options);
  const headers = lowerHeaders(request.headers);
  const one = (name: string) => headers.get(name)?.join(',');
  const raw = one('authorization');
  if (!raw) return refuse(400, 'MissingRequiredHeader', 'The request has no Authorization header');
  if (/^\s*acs\s+[^:\s]+:/.test(raw)) {
    return refuse(
      400,
      'InvalidArgument',
      'The legacy "acs <AK>:<signature>" scheme is not supported; use ACS3-HMAC-SHA256',
    );
  }
  const auth = parseAuthorization(raw);
  if (!auth) return refuse(400, 'InvalidArgument', 'The Authorization header is not an ACS3 signature');
  if (!ALGORITHMS.has(auth.algorithm)) {
    return refuse(400, 'InvalidArgument', `The signature algorithm ${auth.algorithm} is not supported`);
  }
  const algorithm = auth.algorithm as Algorithm;
  const signed = new Set(auth.signedHeaders);
  const required = ['host', 'x-acs-date', 'x-acs-content-sha256'];
  if (options.checkNonce) required.push('x-acs-signature-nonce');
  for (const name of required) {
    if (!headers.has(name)) return refuse(400, 'MissingRequiredHeader', `The request has no ${name} header`);
    if (!signed.has(name)) return refuse(400, 'InvalidArgument', `The ${name} header must be signed`);
  }
  for (const name of headers.keys()) {
    if ((name.startsWith('x-acs-') || name === 'content-type') && !signed.has(name)) {
      return refuse(400, 'InvalidArgument', `The ${name} header is present but not signed`);
    }
  }
  for (const name of signed) {
    if (!headers.has(name)) return refuse(400, 'MissingRequiredHeader', `The signed header ${name} is missing`);
  }
  const date = one('x-acs-date') as string;
  const time = ISO_UTC.test(date) ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(time)) return refuse(400, 'InvalidArgument', 'x-acs-date is not an ISO 8601 UTC time');
  if (Math.abs(now - time) > maxSkew * 1000) {
    return refuse(403, 'RequestTimeTooSkewed', `x-acs-date is more than ${maxSkew} s away from the server time`);
  }
  const declared = (one('x-acs-content-sha256') as string).toLowerCase();
  const payloadHash = declaredBody ? declared : hash(request.body ?? Buffer.alloc(0), algorithm);
  if (declared !== payloadHash) {
    return refuse(403, 'SignatureNotMatch', 'x-acs-content-sha256 does not match the request body');
  }
  const secret = lookupSecret(auth.accessKeyId);
  if (secret === undefined) return refuse(403, 'InvalidAccessKeyID', 'The access key id is not known');
  const pairs = queryPairs(request.query ?? '');
  if (!pairs) return refuse(400, 'InvalidArgument', 'The query string is not valid percent-encoding');

  const names = [...signed].sort();
  const canonicalHeaders = names
    .map(
      (n) =>
        `${n}:${(headers.get(n) as string[])
          .map((v) => v.trim())
          .sort()
          .join(',')}\n`,
    )
    .join('');
  const expected = Buffer.from(auth.signature);
  for (const path of canonicalPaths(request.path)) {
    const canonical = [
      request.method.toUpperCase(),
      path,
      canonicalQuery(pairs),
      canonicalHeaders,
      names.join(';'),
      payloadHash,
    ].join('\n');
    const actual = Buffer.from(hmac(secret, `${algorithm}\n${hash(canonical, algorithm)}`, algorithm));
    if (actual.length === expected.length && timingSafeEqual(actual, expected)) {
      if (
        options.checkNonce &&
        !options.checkNonce(one('x-acs-signature-nonce') as string, time + maxSkew * 1000 + 1)
      ) {
        return refuse(400, 'SignatureNonceUsed', 'The x-acs-signature-nonce was used before: a request is signed once');
      }
      const token = one('x-acs-security-token');
      return { ok: true, accessKeyId: auth.accessKeyId, algorithm, ...(token ? { securityToken: token } : {}) };
    }
  }
  return refuse(
    403,
    'SignatureNotMatch',
    'The request signature does not match; check the access key secret and the signing method',
  );
}

/**
 * Signs a request the way the official SDK does (ACS3-HMAC-SHA256), for clients other than the
 * SDK (curl, scripts, tests). Returns the headers to add: `x-acs-date`,
 * `x-acs-signature-nonce`, `x-acs-content-sha256` and `authorization`. Send exactly the `path`
 * and `query` that were signed, and the `host` header given here.
 *
 * @example
 * ```ts
 * const headers = signAcsRequest({ method: 'GET', path: '/2023-03-30/functions/f/async-tasks', query: 'limit=5',
 *   headers: { host: '127.0.0.1:9001', 'x-acs-action': 'ListAsyncTasks', 'x-acs-version': '2023-03-30' } },
 *   { accessKeyId: 'dev', accessKeySecret: 'dev-secret' });
 * ```
 */
export function signAcsRequest(
  request: SignedRequest,
  credentials: { accessKeyId: string; accessKeySecret: string },
  options: { date?: Date } = {},
): Record<string, string> {
  checkRequest(request);
  if (
    typeof credentials !== 'object' ||
    credentials === null ||
    typeof credentials.accessKeyId !== 'string' ||
    typeof credentials.accessKeySecret !== 'string' ||
    !credentials.accessKeyId ||
    !credentials.accessKeySecret
  ) {
    throw new TypeError('Expected `credentials` to have a non-empty accessKeyId and accessKeySecret');
  }
  const date = optionsObject(options, 'signAcsRequest()', ['date']).date ?? new Date();
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new TypeError(
      `Expected \`date\` to be a valid Date, got \`${date instanceof Date ? 'Invalid Date' : kind(date)}\``,
    );
  }
  const algorithm: Algorithm = 'ACS3-HMAC-SHA256';
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  out['x-acs-date'] ??= date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  out['x-acs-signature-nonce'] ??= randomBytes(32).toString('hex');
  out['x-acs-content-sha256'] = hash(request.body ?? Buffer.alloc(0), algorithm);
  const names = Object.keys(out)
    .filter((n) => n === 'host' || n === 'content-type' || n.startsWith('x-acs-'))
    .sort();
  const canonical = [
    request.method.toUpperCase(),
    normalisePath(request.path),
    canonicalQuery(queryPairs(request.query ?? '') ?? []),
    names.map((n) => `${n}:${(out[n] as string).trim()}\n`).join(''),
    names.join(';'),
    out['x-acs-content-sha256'],
  ].join('\n');
  const signature = hmac(credentials.accessKeySecret, `${algorithm}\n${hash(canonical, algorithm)}`, algorithm);
  out.authorization = `${algorithm} Credential=${credentials.accessKeyId},SignedHeaders=${names.join(';')},Signature=${signature}`;
  return out;
}
