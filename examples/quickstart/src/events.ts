import { fcHttpEvent } from '@fc-async/core';

/** FC 3.0 HTTP events as FC hands them to a built-in runtime (a Buffer holding JSON). */
export function sampleEvent(
  method: string,
  path: string,
  options: { query?: Record<string, string>; headers?: Record<string, string>; body?: unknown } = {},
): Buffer {
  const query = new URLSearchParams(options.query).toString();
  const event = fcHttpEvent({
    method,
    url: query ? `${path}?${query}` : path,
    headers: { host: 'quickstart.cn-hangzhou.fcapp.run', 'user-agent': 'quickstart', ...options.headers },
    body: options.body === undefined ? undefined : (options.body as object),
    sourceIp: '203.0.113.10',
    accountId: '1234567890',
  });
  return Buffer.from(JSON.stringify(event));
}

export const sampleContext = { region: 'cn-hangzhou', accountId: '1234567890', function: { name: 'quickstart' } };
