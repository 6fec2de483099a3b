import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { acsAccessKeyId, bodyMatchesSignature, verifyAcsHead } from '../signature.js';
import { ApiError } from './respond.js';

/**
 * Who may use the control plane. On loopback with no key: anyone on this machine, signatures are
 * not checked. With a key: ACS3 signatures are verified (a wrong key fails as on FC) and each
 * signature is accepted once (its nonce). `required` (the control plane bound beyond loopback):
 * every request must carry a valid signature, or HTTP Basic credentials (access key id and
 * secret) for the dashboard in a browser.
 */
export interface ControlAuth {
  required: boolean;
  credentials?: { accessKeyId: string; accessKeySecret: string } | undefined;
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|[a-z0-9-]+\.localhost)(:\d+)?$/i;

/**
 * A request a page of another site made the browser send: refused wherever the browser adds
 * credentials by itself (the loopback control plane, a dashboard signed in with HTTP Basic).
 */
function crossSite(req: IncomingMessage): boolean {
  const host = req.headers.host ?? '';
  const origin = req.headers.origin;
  return (
    (origin && origin !== `http://${host}` && origin !== `https://${host}`) ||
    req.headers['sec-fetch-site'] === 'cross-site'
  );
}

/**
 * The nonces of accepted signatures, per control plane, each until its `x-acs-date` leaves the
 * skew window (then the date alone refuses the request): a replayed request fails as on FC.
 */
const nonces = new WeakMap<ControlAuth, Map<string, number>>();

function firstUse(auth: ControlAuth, nonce: string, expiresAt: number): boolean {
  let seen = nonces.get(auth);
  if (!seen) {
    seen = new Map();
    nonces.set(auth, seen);
  }
  const now = Date.now();
  // Oldest first (insertion order): drop the expired ones at the front.
  for (const [old, until] of seen) {
    if (until > now) break;
    seen.delete(old);
  }
  const until = seen.get(nonce);
  if (until !== undefined && until > now) return false;
  seen.delete(nonce);
  seen.set(nonce, expiresAt);
  return true;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks a request before its body is read, so that a client without valid credentials cannot
 * make the control plane take in a body (up to 32 MB for an invocation): throws an
 * {@link ApiError} (with `challenge` set when a browser should be asked for Basic credentials).
 * An ACS3 signature is verified over the body hash it declares; the returned algorithm is for
 * {@link checkSignedBody} once the body is in (`undefined`: nothing left to check).
 */
export function authorizeHead(
  req: IncomingMessage,
  target: { path: string; query: string; browser: boolean },
  auth: ControlAuth,
): string | undefined {
  const header = req.headers.authorization;
  const creds = auth.credentials;
  if (!auth.required) {
    // A page on another site, or a DNS-rebound name, must not drive the local control plane.
    const host = req.headers.host ?? '';
    if (!LOOPBACK_HOST.test(host)) throw new ApiError(403, 'AccessDenied', `Host ${host} is not a loopback name`);
    if (crossSite(req)) throw new ApiError(403, 'AccessDenied', 'Cross-site requests are refused');
  }
  if (!header) {
    if (!auth.required) return undefined;
    if (target.browser)
      throw Object.assign(new ApiError(401, 'MissingRequiredHeader', 'Sign in with the access key'), {
        challenge: true,
      });
    throw new ApiError(400, 'MissingRequiredHeader', 'The request has no Authorization header');
  }
  if (/^basic /i.test(header)) {
    basic(req, header, creds);
    return undefined;
  }
  if (!creds) return undefined;
  // Signed for Function Compute's own endpoint (<account>.<region>.fc.aliyuncs.com): a request
  // meant for FC, replayed here by whoever saw it, not one a client addressed to the emulator.
  const signedHost = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  if (signedHost === 'aliyuncs.com' || signedHost.endsWith('.aliyuncs.com')) {
    throw new ApiError(
      403,
      'AccessDenied',
      `A request signed for ${signedHost} is refused: sign it for the emulator's address`,
    );
  }
  const id = acsAccessKeyId(header);
  if (id !== undefined && !same(id, creds.accessKeyId)) {
    throw new ApiError(403, 'InvalidAccessKeyID', 'The access key id is not known');
  }
  // The emulator's key is a plain AccessKey pair: a security token with it is a client set up with
  // STS credentials (or a made-up token), which FC refuses; accepted here it would work only locally.
  if (req.headers['x-acs-security-token'] !== undefined) {
    throw new ApiError(
      400,
      'InvalidSecurityToken.MismatchWithAccessKey',
      "The access key is not an STS key: the emulator's key pair takes no security token",
    );
  }
  const result = verifyAcsHead(
    { method: req.method ?? 'GET', path: target.path, query: target.query, headers: req.headers },
    (id) => (id === creds.accessKeyId ? creds.accessKeySecret : undefined),
    { checkNonce: (nonce, expiresAt) => firstUse(auth, nonce, expiresAt) },
  );
  if (!result.ok) throw new ApiError(result.status, result.code, result.message);
  return result.algorithm;
}

/** The body of a request {@link authorizeHead} accepted the signature of: the one it declared. */
export function checkSignedBody(req: IncomingMessage, body: Buffer, algorithm: string): void {
  if (!bodyMatchesSignature(req.headers, body, algorithm)) {
    throw new ApiError(403, 'SignatureNotMatch', 'x-acs-content-sha256 does not match the request body');
  }
}

/** HTTP Basic credentials (the dashboard in a browser, beyond loopback): the access key id and secret. */
function basic(req: IncomingMessage, header: string, creds: ControlAuth['credentials']): void {
  if (!creds) return;
  // A browser sends cached Basic credentials with a form posted from any site.
  if (crossSite(req)) throw new ApiError(403, 'AccessDenied', 'Cross-site requests are refused');
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const ok =
    colon > 0 &&
    same(decoded.slice(0, colon), creds.accessKeyId) &&
    same(decoded.slice(colon + 1), creds.accessKeySecret);
  if (!ok)
    throw Object.assign(new ApiError(401, 'InvalidAccessKeyID', 'Wrong access key id or secret'), {
      challenge: true,
    });
}
