import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { startFc2Web, waitFor } from './helpers.js';

// FC 2.0 handlers (and custom runtimes) see the query as the client sent it, whatever the method:
// a WebDAV or SSDP method must not get FC 3.0's comma-joined values where GET gets the array.
describe('the query an FC 2.0 HTTP handler sees, by method', () => {
  let web: Awaited<ReturnType<typeof startFc2Web>>;
  let emulator: Emulator;
  beforeAll(async () => {
    web = await startFc2Web(`exports.handler = (req, resp) => {
  resp.setHeader('content-type', 'application/json');
  resp.send(JSON.stringify({ method: req.method, url: req.url, queries: req.queries }));
};
`);
    emulator = web.emulator;
  });
  afterAll(() => web?.close());

  const query = '?tag=a&tag=b%2Cc&one=1';
  const expected = { tag: ['a', 'b,c'], one: '1' };

  it.each(['GET', 'PROPFIND', 'LOCK', 'M-SEARCH'])('keeps the query as sent for %s', async (method) => {
    const res = await fetch(`${emulator.triggerUrl}/items${query}`, { method });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ method, url: `/items${query}`, queries: expected });
  });

  it('replays an async PROPFIND with the query as sent', async () => {
    const accepted = await fetch(`${emulator.triggerUrl}/items${query}`, {
      method: 'PROPFIND',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'propfind_1' },
    });
    expect(accepted.status).toBe(202);
    // Until it ends (bounded in time, not in polls: a busy machine runs it later).
    const task = await waitFor(async () => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/web/async-tasks/propfind_1`);
      const found = (await res.json()) as { status?: string; returnPayload?: string };
      return ['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid'].includes(found.status ?? '') ? found : undefined;
    });
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload ?? '{}')).toEqual({
      method: 'PROPFIND',
      url: `/items${query}`,
      queries: expected,
    });
  });
});
