import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, nonNegativeOption, objectOption } from './validate.js';

/**
 * The request header carrying the signature of {@link httpDestination} posts.
 *
 * Format: `fc-async-signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` where each `v1` is the
 * lower-case hex HMAC-SHA256, keyed with a secret (UTF-8), of the exact bytes
 * `` `${t}.${rawBody}` `` (the decimal `t`, a dot, then the raw request body). One `v1` is sent per
 * configured secret, so a receiver accepts any of them while secrets rotate. Unknown keys are
 * ignored by the verifier, leaving room for future schemes.
 * The name does not start with `x-fc-`: FC's HTTP trigger drops a client's own `x-fc-*` headers, so
 * a receiver deployed as an FC function would never see it.
 *
 * @example
 * ```ts
 * import express from 'express';
 * const app = express();
 * app.post('/fc-hooks', express.raw({ type: 'application/json' }), (req, res) => {
 *   const ok = verifyDestinationSignature(req.body, req.get(SIGNATURE_HEADER), process.env.HOOK_SECRET!);
 *   res.sendStatus(ok ? 204 : 400);
 * });
 * ```
 */
export const SIGNATURE_HEADER = 'fc-async-signature';

/**
 * Why {@link checkDestinationSignature} rejected a request.
 *
 * @example
 * ```ts
 * declare const rawBody: Buffer, header: string | undefined;
 * const check = checkDestinationSignature(rawBody, header, process.env.HOOK_SECRET!);
 * const reason: SignatureFailure | undefined = check.ok ? undefined : check.reason; // e.g. 'timestamp_out_of_tolerance'
 * ```
 */
export type SignatureFailure =
  | 'missing_header'
  | 'malformed_header'
  | 'no_signature'
  | 'timestamp_out_of_tolerance'
  | 'signature_mismatch';

/**
 * Result of {@link checkDestinationSignature}: `timestamp` is the signed `t` (unix seconds).
 *
 * @example
 * ```ts
 * declare const rawBody: Buffer, header: string | undefined;
 * const check: SignatureCheck = checkDestinationSignature(rawBody, header, ['new-secret', 'old-secret']);
 * if (check.ok) console.log('signed at', new Date(check.timestamp * 1000));
 * ```
 */
export type SignatureCheck = { ok: true; timestamp: number } | { ok: false; reason: SignatureFailure };

/**
 * Options of {@link verifyDestinationSignature} and {@link checkDestinationSignature}.
 *
 * @example
 * ```ts
 * declare const rawBody: Buffer, header: string | undefined;
 * const options: VerifySignatureOptions = { toleranceSeconds: 60 };
 * verifyDestinationSignature(rawBody, header, process.env.HOOK_SECRET!, options);
 * ```
 */
export interface VerifySignatureOptions {
  /** Largest accepted distance between `t` and now, in seconds, either way. `Infinity` disables the check. @default 300 */
  toleranceSeconds?: number | undefined;
  /** The current time in epoch milliseconds, as `Date.now()` returns. @default Date.now() */
  now?: number | undefined;
}

/**
 * The secret a destination payload is signed or checked with, or several (during a rotation: the
 * new one and the old one), each a non-empty string. A header passes when any of its `v1` values
 * matches any of them.
 *
 * @example
 * ```ts
 * const secrets: SignatureSecrets = [process.env.HOOK_SECRET!, process.env.HOOK_SECRET_OLD!];
 * checkDestinationSignature('{"timestamp":1}', 't=1700000000,v1=5f0c', secrets);
 * ```
 */
export type SignatureSecrets = string | readonly string[];

/**
 * The value of an `fc-async-signature` header for `rawBody`, signed with each secret: what
 * {@link httpDestination} sends. Useful to produce compatible requests in tests or other senders.
 *
 * @example
 * ```ts
 * const header = signDestinationPayload('{"timestamp":1}', process.env.HOOK_SECRET!);
 * // 't=1700000000,v1=5f0c...'
 * ```
 */
export function signDestinationPayload(
  rawBody: string | Buffer,
  secret: SignatureSecrets,
  options: { timestamp?: number } = {},
): string {
  rawBodyOption(rawBody);
  const secrets = secretList(secret);
  const t =
    objectOption('options', options, 'signDestinationPayload()', ['timestamp']).timestamp ??
    Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(t) || t < 0) {
    throw new TypeError(`Expected \`timestamp\` to be unix seconds (an integer from 0 and up), got \`${String(t)}\``);
  }
  const parts = [`t=${t}`];
  for (const s of secrets) parts.push(`v1=${hmac(s, t, rawBody).toString('hex')}`);
  return parts.join(',');
}

/**
 * Checks an `fc-async-signature` header against the raw request body and says why it failed.
 * Passes when `t` is within `toleranceSeconds` of now and any `v1` matches any secret
 * (timing-safe). Throws only for invalid arguments of the receiver (empty secret, bad tolerance,
 * and, once a request is signed, a body that is not the raw string or bytes).
 *
 * @example
 * ```ts
 * import express from 'express';
 * const app = express();
 * app.post('/fc-hooks', express.raw({ type: 'application/json' }), (req, res) => {
 *   const check = checkDestinationSignature(req.body, req.headers['fc-async-signature'], process.env.HOOK_SECRET!);
 *   if (!check.ok) return res.status(400).send(check.reason);
 *   res.sendStatus(204);
 * });
 * ```
 */
export function checkDestinationSignature(
  rawBody: string | Buffer,
  header: string | readonly string[] | undefined,
  secret: SignatureSecrets,
  options?: VerifySignatureOptions,
): SignatureCheck {
  const secrets = secretList(secret);
  const opts = objectOption('options', options, 'checkDestinationSignature()', ['toleranceSeconds', 'now']);
  const tolerance =
    opts.toleranceSeconds === Infinity ? Infinity : nonNegativeOption('toleranceSeconds', opts.toleranceSeconds, 300);
  const now = opts.now ?? Date.now();
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw new TypeError(`Expected \`now\` to be epoch milliseconds, got \`${String(now)}\``);
  }
  if (Array.isArray(header)) {
    if (header.length !== 1) return { ok: false, reason: header.length === 0 ? 'missing_header' : 'malformed_header' };
    header = header[0];
  }
  if (typeof header !== 'string' || header.trim() === '') return { ok: false, reason: 'missing_header' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'malformed_header' };
  if (parsed.signatures.length === 0) return { ok: false, reason: 'no_signature' };
  if (Math.abs(now / 1000 - parsed.timestamp) > tolerance) return { ok: false, reason: 'timestamp_out_of_tolerance' };
  // Only a signed request gets here: an unsigned one whose body a parser skipped (`req.body`
  // undefined under express.raw for another content type) is refused above, not a crash.
  rawBodyOption(rawBody);
  const expected = secrets.map((s) => hmac(s, parsed.timestamp, rawBody));
  let match = false;
  // Compare every pair so timing does not reveal which one matched.
  for (const given of parsed.signatures) {
    for (const want of expected) if (timingSafeEqual(given, want)) match = true;
  }
  return match ? { ok: true, timestamp: parsed.timestamp } : { ok: false, reason: 'signature_mismatch' };
}

/**
 * True when the `fc-async-signature` header is a valid, fresh signature of `rawBody` by
 * `secret` (or any of several secrets): see {@link checkDestinationSignature} for the reason
 * of a rejection. Pass the body exactly as received, before any JSON parsing.
 *
 * @example
 * ```ts
 * import express from 'express';
 * const app = express();
 * app.post('/fc-hooks', express.raw({ type: 'application/json' }), (req, res) => {
 *   if (!verifyDestinationSignature(req.body, req.get('fc-async-signature'), process.env.HOOK_SECRET!)) return res.sendStatus(400);
 *   const record = JSON.parse(req.body.toString('utf8'));
 *   res.sendStatus(204);
 * });
 * ```
 */
export function verifyDestinationSignature(
  rawBody: string | Buffer,
  header: string | readonly string[] | undefined,
  secret: SignatureSecrets,
  options?: VerifySignatureOptions,
): boolean {
  return checkDestinationSignature(rawBody, header, secret, options).ok;
}

/** Validates `secret`: a non-empty string or a non-empty list of them. The value is never printed. */
export function secretList(secret: unknown, name = 'secret'): string[] {
  const list = Array.isArray(secret) ? secret : [secret];
  if (list.length === 0 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    const got = Array.isArray(secret) ? 'an array with an empty or non-string entry' : `\`${typeof secret}\``;
    throw new TypeError(`Expected \`${name}\` to be a non-empty string or an array of them, got ${got}`);
  }
  return list as string[];
}

/** The signed bytes: a string or a Buffer (a parsed JSON body would not match what was signed). */
function rawBodyOption(rawBody: unknown): void {
  if (typeof rawBody !== 'string' && !(rawBody instanceof Uint8Array)) {
    throw new TypeError(`Expected \`rawBody\` to be a string or a Buffer, got \`${describe(rawBody)}\``);
  }
}

const HEX64 = /^[0-9a-f]{64}$/i;

function parseHeader(header: string): { timestamp: number; signatures: Buffer[] } | undefined {
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value)) return undefined;
      timestamp = Number(value);
    } else if (key === 'v1' && HEX64.test(value)) {
      signatures.push(Buffer.from(value, 'hex'));
    }
  }
  return timestamp === undefined ? undefined : { timestamp, signatures };
}

function hmac(secret: string, timestamp: number, rawBody: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
}
