import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type FcAsyncControls, isMiddlewareReplay } from '@fc-async/core';

/** Serves a Node listener on a loopback port; `close()` closes `controls`, then the server. */
export async function serveListener(listener: RequestListener, controls: FcAsyncControls | undefined) {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await controls?.close({ timeoutMs: 50 });
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Drains a request stream: what a body parser installed too early does. */
export async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

/**
 * The `auth` check of `AppSpec.before` (docs/deploy.md's pattern): `authorization: Bearer ok`, or
 * the middleware's replay of a request (which carries no credentials; fcAsync() accepted it only
 * after this check passed).
 */
export function authorized(req: IncomingMessage): boolean {
  return req.headers.authorization === 'Bearer ok' || isMiddlewareReplay(req);
}
