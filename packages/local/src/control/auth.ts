import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { verifyAcsSignature } from '../signature.js';
import { ApiError } from './respond.js';

/**
 * Who may use the control plane. On loopback with no key: anyone on this machine, signatures are
 * not checked. With a key: ACS3 signatures are verified (a wrong key fails as on FC). `required`
 * (the control plane bound beyond loopback): every request must carry a valid signature, or HTTP
 * Basic credentials (access key id and secret) for the dashboard in a browser.
 */
export interface ControlAuth {
  required: boolean;
  credentials?: { accessKeyId: string; accessKeySecret: string } | undefined;
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|[a-z0-9-]+\.localhost)(:\d+)?$/i;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks one request; throws an {@link ApiError} (with `challenge` set when a browser should be
 * asked for Basic credentials).
 */
export function authorize(
  req: IncomingMessage,
  target: { path: string; query: string; body: Buffer; browser: boolean },
  auth: ControlAuth,
): void {
  const header = req.headers.authorization;
  const creds = auth.credentials;
  if (!auth.required) {
    // A page on another site, or a DNS-rebound name, must not drive the local control plane.
    const host = req.headers.host ?? '';
    if (!LOOPBACK_HOST.test(host)) throw new ApiError(403, 'AccessDenied', `Host ${host} is not a loopback name`);
    const origin = req.headers.origin;
    if ((origin && origin !== `http://${host}`) || req.headers['sec-fetch-site'] === 'cross-site') {
      throw new ApiError(403, 'AccessDenied', 'Cross-site requests are refused');
    }
  }
  if (!header) {
    if (!auth.required) return;
    if (target.browser)
      throw Object.assign(new ApiError(401, 'MissingRequiredHeader', 'Sign in with the access key'), {
        challenge: true,
      });
    throw new ApiError(400, 'MissingRequiredHeader', 'The request has no Authorization header');
  }
  if (/^basic /i.test(header)) {
    if (!creds) return;
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
    return;
  }
  if (!creds) return;
  const result = verifyAcsSignature(
    { method: req.method ?? 'GET', path: target.path, query: target.query, headers: req.headers, body: target.body },
    (id) => (id === creds.accessKeyId ? creds.accessKeySecret : undefined),
  );
  if (!result.ok) throw new ApiError(result.status, result.code, result.message);
}
