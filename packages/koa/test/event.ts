/** A parsed FC 3.0 HTTP event for adapter tests. */
export function event(method: string, path: string, body = '', headers: Record<string, string> = {}) {
  return {
    version: 'v1',
    rawPath: path,
    body,
    isBase64Encoded: false,
    headers,
    queryParameters: {},
    requestContext: { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', http: { method, path, sourceIp: '10.0.0.1' } },
  };
}

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
