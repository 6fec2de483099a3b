/** FC 3.0 HTTP events as FC hands them to a built-in runtime (a Buffer holding JSON). */
export function sampleEvent(
  method: string,
  path: string,
  options: { query?: Record<string, string>; headers?: Record<string, string>; body?: unknown } = {},
): Buffer {
  const now = Date.now();
  const body = options.body === undefined ? '' : JSON.stringify(options.body);
  return Buffer.from(
    JSON.stringify({
      version: 'v1',
      rawPath: path,
      body,
      isBase64Encoded: false,
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'quickstart', ...options.headers },
      queryParameters: options.query ?? {},
      requestContext: {
        accountId: '1234567890',
        domainName: 'quickstart.cn-hangzhou.fcapp.run',
        domainPrefix: 'quickstart',
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.10', userAgent: 'quickstart' },
        requestId: `1-${Math.floor(now / 1000).toString(16)}-${Math.random().toString(16).slice(2, 14).padEnd(24, '0')}`,
        time: new Date(now).toISOString(),
        timeEpoch: String(now),
      },
    }),
  );
}

export const sampleContext = { region: 'cn-hangzhou', accountId: '1234567890', function: { name: 'quickstart' } };
