import type { DestinationRecord } from '../fc-types.js';
import { DestinationError } from './types.js';

/**
 * A copy of `record` for one destination call: its plain objects and arrays are new, everything
 * else (strings, numbers, other objects) is shared. A destination may then change its record (parse
 * `responsePayload` in place, drop a field) without changing what the other destinations, or its
 * own next attempt, get; the payload strings, immutable, are not copied, so a record of megabytes
 * costs a few small objects. A cycle stays a cycle (the copy of the same ancestor), so a record
 * JSON cannot hold still fails as one (see {@link recordJson}).
 */
export function copyRecord(record: DestinationRecord): DestinationRecord {
  return copyValue(record, [], []) as DestinationRecord;
}

function copyValue(value: unknown, originals: object[], copies: object[]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const ancestor = originals.indexOf(value);
  if (ancestor !== -1) return copies[ancestor];
  let copy: Record<string, unknown> | unknown[];
  if (Array.isArray(value)) copy = [];
  else if (isPlainObject(value)) copy = Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>;
  else return value;
  originals.push(value);
  copies.push(copy);
  // Own enumerable keys: what JSON.stringify writes.
  for (const key of Object.keys(value)) {
    const item = copyValue((value as Record<string, unknown>)[key], originals, copies);
    // An own `__proto__` key (JSON.parse makes one) stays a key: assigning it would set the prototype.
    if (key === '__proto__')
      Object.defineProperty(copy, key, { value: item, writable: true, enumerable: true, configurable: true });
    else (copy as Record<string, unknown>)[key] = item;
  }
  originals.pop();
  copies.pop();
  return copy;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The record as JSON. A record JSON cannot hold (a `BigInt`, a cycle, a `toJSON` that throws) fails
 * the same way on every try: a `DestinationInvalid` error that is not retried.
 */
export function recordJson(record: DestinationRecord): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(record);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DestinationError('DestinationInvalid', `The record cannot be written as JSON: ${reason}`, {
      retryable: false,
      cause: error,
    });
  }
  if (typeof json !== 'string') {
    throw new DestinationError('DestinationInvalid', `The record cannot be written as JSON: got ${typeof record}`, {
      retryable: false,
    });
  }
  return json;
}
