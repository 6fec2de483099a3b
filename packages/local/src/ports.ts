import { createServer } from 'node:net';

/**
 * A port free on `host` now: the OS picks it, the probe closes. For a port a child is told before
 * it listens (a custom runtime's, as on FC) or one `--watch` picks once for every restart.
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
