import { fcHttpEvent } from '@fc-async/core';

/** A POST with a JSON body as FC 3.0 hands it to a built-in runtime: a Buffer holding JSON. */
export function fcEvent(path: string, body: unknown, headers: Record<string, string> = {}): Buffer {
  const event = fcHttpEvent({
    method: 'POST',
    url: path,
    headers: { host: 'notify.cn-hangzhou.fcapp.run', 'user-agent': 'demo', ...headers },
    body: body as object,
    sourceIp: '203.0.113.10',
    accountId: '1234567890',
  });
  return Buffer.from(JSON.stringify(event));
}

export const fcContext = { region: 'cn-hangzhou', accountId: '1234567890', function: { name: 'notify' } };
