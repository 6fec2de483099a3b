import { createServer } from 'node:net';

/**
 * A loopback TCP port free now: the OS picks it and the probe closes, for a server a test starts
 * on it (a child process, redis-server) that cannot be told to take port 0 and say which it got.
 *
 * @example
 * const port = await freePort();
 * spawn('redis-server', ['--port', String(port)]);
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
