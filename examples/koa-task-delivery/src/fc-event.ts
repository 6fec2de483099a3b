/** A POST with a JSON body as FC 3.0 hands it to a built-in runtime: a Buffer holding JSON. */
export function fcEvent(path: string, body: unknown, headers: Record<string, string> = {}): Buffer {
  const now = Date.now();
  return Buffer.from(
    JSON.stringify({
      version: 'v1',
      rawPath: path,
      body: JSON.stringify(body),
      isBase64Encoded: false,
      headers: { 'Content-Type': 'application/json', ...headers },
      queryParameters: {},
      requestContext: {
        accountId: '1234567890',
        domainName: 'notify.cn-hangzhou.fcapp.run',
        domainPrefix: 'notify',
        http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.10', userAgent: 'demo' },
        requestId: `1-${Math.floor(now / 1000).toString(16)}-${Math.random().toString(16).slice(2, 14).padEnd(24, '0')}`,
        time: new Date(now).toISOString(),
        timeEpoch: String(now),
      },
    }),
  );
}

export const fcContext = { region: 'cn-hangzhou', accountId: '1234567890', function: { name: 'notify' } };
