import { randomBytes } from 'node:crypto';

const POOL_SIZE = 12 * 256;
let pool = Buffer.alloc(0);
let offset = POOL_SIZE;
/** `1-<8 hex: epoch seconds>-` of the last id, formatted once per second. */
let prefixSecond = Number.NaN;
let prefix = '';

/**
 * A new request id in FC 3.0's format: `1-<8 hex: epoch seconds>-<24 hex: random>`, e.g.
 * `1-64f6d6e7-e01edb1cce58240ed59b59d9`.
 *
 * @example
 * ```ts
 * newRequestId(); // '1-6929f3a1-0c5e8e2b7d4a1f3e9b6c2d8a'
 * ```
 */
export function newRequestId(now: number = Date.now()): string {
  if (offset + 12 > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    offset = 0;
  }
  const random = pool.toString('hex', offset, offset + 12);
  offset += 12;
  const second = Math.floor(now / 1000);
  if (second !== prefixSecond) {
    prefixSecond = second;
    prefix = `1-${second.toString(16).padStart(8, '0')}-`;
  }
  return prefix + random;
}

const REQUEST_ID = /^1-[0-9a-f]{8}-[0-9a-f]{24}$/;

/**
 * True for a request id in FC 3.0's format.
 *
 * @example
 * ```ts
 * isFcRequestId('1-64f6d6e7-e01edb1cce58240ed59b59d9'); // true
 * ```
 */
export function isFcRequestId(id: string): boolean {
  return REQUEST_ID.test(id);
}
