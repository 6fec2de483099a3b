import { fcHttpEvent } from '@fc-async/core';

/** An FC 3.0 HTTP event for adapter tests. */
export const event = (method: string, path: string, body = '', headers: Record<string, string> = {}) =>
  fcHttpEvent({ method, url: path, body, headers, sourceIp: '10.0.0.1' });

export function logger() {
  const errors: unknown[] = [];
  return {
    errors,
    debug() {},
    info() {},
    warn() {},
    error: (_m: string, f?: Record<string, unknown>) => void errors.push(f?.error),
  };
}
