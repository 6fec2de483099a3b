import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LocalFunction } from '../function.js';
import { invalid } from './respond.js';

/** One FC API call, routed to its function. */
export interface ApiCall {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  fn: LocalFunction;
  params: URLSearchParams;
  body: Buffer;
}

/** A query parameter given at most once. */
export function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw invalid(`${name} must be given once, got ${all.length} values`);
  return all[0];
}

/** An integer query parameter within `[min, max]`. */
export function integer(params: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got "${raw.slice(0, 32)}"`);
  }
  return value;
}

/** `true` or `false`. */
export function boolean(params: URLSearchParams, name: string): boolean | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  if (raw !== 'true' && raw !== 'false') throw invalid(`${name} must be true or false, got "${raw.slice(0, 32)}"`);
  return raw === 'true';
}

const QUALIFIER = /^[A-Za-z0-9_$-]{1,128}$/;

/**
 * Checks `qualifier`. Locally there is one version; any alias or version name is accepted and
 * means LATEST.
 */
export function checkQualifier(params: URLSearchParams): void {
  const q = single(params, 'qualifier');
  if (q !== undefined && !QUALIFIER.test(q))
    throw invalid(`qualifier must be a version or alias name, got "${q.slice(0, 32)}"`);
}
