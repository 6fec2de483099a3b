import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { fcAsync } from '../src/index.js';
import { logger } from './event.js';

// The behaviour every framework shares runs in packages/test-kit (middleware, listen, tracing).
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

describe('express fcAsync() middleware, Express only', () => {
  it('in a sub-app mounted at a path, replays the original URL through the whole app', async () => {
    const seen: unknown[] = [];
    const middleware = fcAsync({ logger: logger(), env: {}, async: { backoff: { baseMs: 1, maxMs: 2 } } });
    const inner = express();
    inner.use(middleware);
    inner.post('/job', express.json(), (req, res) => {
      seen.push({ type: req.fc?.type, body: req.body });
      res.json({ ok: true });
    });
    const server = createServer(express().use('/api', inner));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      await middleware.close({ timeoutMs: 50 });
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/job`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
      body: '{"v":1}',
    });
    expect(r.status).toBe(202);
    await middleware.drain();
    expect(seen).toEqual([{ type: 'Async', body: { v: 1 } }]);
  });
});
