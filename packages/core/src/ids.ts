import { randomBytes } from 'node:crypto';

const POOL_SIZE = 12 * 256;
let pool = Buffer.alloc(0);
let offset = POOL_SIZE;
/** The id being built: `1-<8 hex: epoch seconds>-` (rewritten once per second) then 24 hex digits. */
const id = Buffer.alloc(35);
let prefixSecond = Number.NaN;
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * A new request id in FC 3.0's format: `1-<8 hex: epoch seconds>-<24 hex: random>`, e.g.
 * `1-64f6d6e7-e01edb1cce58240ed59b59d9`. Built in a buffer and read out once: a flat string,
 * where `prefix + random` would be a two-part string that every Map lookup of the task id
 * flattens into a third.
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
  const second = Math.floor(now / 1000);
  if (second !== prefixSecond) {
    prefixSecond = second;
    id.write(`1-${second.toString(16).padStart(8, '0')}-`, 0, 'latin1');
  }
  for (let i = 0; i < 12; i++) {
    const byte = pool[offset + i] as number;
    id[11 + 2 * i] = HEX_DIGITS[byte >> 4] as number;
    id[12 + 2 * i] = HEX_DIGITS[byte & 15] as number;
  }
  offset += 12;
  return id.toString('latin1', 0, 35);
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
