import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { example, runCli, startCli } from './helpers.js';

// `fc-async dev --max-event-streams` and `--max-body-bytes` set the emulator's bounds from the
// command line, like the `startEmulator` options they stand for.

/** The status of `GET /api/events`, keeping the stream open until `close`. */
function stream(controlUrl: string): Promise<{ status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/api/events', controlUrl), { agent: false }, (res) => {
      res.resume();
      res.on('error', () => {});
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fc-async dev bounds from flags', () => {
  it('--max-event-streams 1: a second dashboard stream gets 503 TooManyStreams while the first is open', async () => {
    const cli = await startCli([example('jobs/app.ts'), '--max-event-streams', '1']);
    try {
      const first = await stream(cli.control);
      expect(first.status).toBe(200);
      const second = await stream(cli.control);
      expect(second.status).toBe(503);
      second.close();
      first.close();
    } finally {
      await cli.stop();
    }
  });

  it.each([
    ['--max-body-bytes below FC’s largest body', ['--max-body-bytes', '1024'], /--max-body-bytes.*'1024'/],
    ['--max-event-streams 0', ['--max-event-streams', '0'], /--max-event-streams.*'0'/],
  ])('%s: one line on stderr, exit 1', async (_label, args, message) => {
    const { code, stderr } = await runCli(['dev', example('jobs/app.ts'), ...args]);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
  });

  it('--max-body-bytes 33554432 starts, and a body within it is served', async () => {
    const cli = await startCli([example('jobs/app.ts'), '--max-body-bytes', String(32 * 1024 * 1024)]);
    try {
      const res = await fetch(`${cli.trigger}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
        body: JSON.stringify({ n: 1 }),
      });
      expect(res.status).toBe(202);
    } finally {
      await cli.stop();
    }
  });
});
