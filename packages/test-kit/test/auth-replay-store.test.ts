import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fcHttpEvent, getInvocation } from '@fc-async/core';
import { createHandler, fcAsync, isMiddlewareReplay, listen } from '@fc-async/express';
import { sqlite } from '@fc-async/sqlite';
import express from 'express5';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { recordingLogger as logger } from '../src/index.js';

// packages/express/test/auth-replay.test.ts's pattern on a durable store (sqlite, whose build this
// package's tests wait for). isMiddlewareReplay's mark is the task's: it holds whichever deployment sharing a durable store
// runs the task, and across a restart.
const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function tasksFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-auth-store-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'tasks.db');
}

/** docs/deploy.md's pattern: a bearer check in front, `fcAsync()` on `path` when `withMiddleware`. */
function guardedApp(path: string, withMiddleware: boolean) {
  const ran: { replay: boolean; authorization: string | undefined; source: string | undefined }[] = [];
  const app = express();
  app.use((req, res, next) => {
    if (isMiddlewareReplay(req)) return next();
    if (req.headers.authorization !== 'Bearer good') return res.status(401).json({ code: 'Unauthorized' });
    next();
  });
  const middleware = withMiddleware
    ? fcAsync({ logger: logger(), env: {}, async: { mode: 'local', backend: sqlite(path) } })
    : undefined;
  if (middleware) app.use(middleware);
  app.post('/admin/delete', (req, res) => {
    ran.push({
      replay: isMiddlewareReplay(req),
      authorization: req.headers.authorization,
      source: getInvocation(req)?.source,
    });
    res.json({ deleted: true });
  });
  return { app, middleware, ran };
}

/** Deployment B: `listen(app)` with `fcAsync()` on the store at `path`. */
async function listening(path: string) {
  const guarded = guardedApp(path, true);
  const server = await listen(guarded.app, { port: 0, host: '127.0.0.1', signals: [], logger: logger(), env: {} });
  cleanup.push(() => server.close());
  return { ...guarded, server, middleware: guarded.middleware as ReturnType<typeof fcAsync> };
}

/** Waits until `taskId` has ended in the store `middleware` reads, and returns it. */
async function ended(middleware: ReturnType<typeof fcAsync>, taskId: string) {
  return vi.waitFor(
    async () => {
      const task = await middleware.tasks.get(taskId);
      if (task?.status !== 'Succeeded' && task?.status !== 'Failed') throw new Error(`${taskId} is ${task?.status}`);
      return task;
    },
    { timeout: 20_000, interval: 50 },
  );
}

/** Deployment A, `createHandler(app)` on the store at `path`, takes an async call due in 1 s, then shuts down. */
async function acceptedByHandler(path: string, taskId: string, headers: Record<string, string> = {}, body = '') {
  const handler = createHandler(guardedApp(path, false).app, {
    logger: logger(),
    env: {},
    async: { mode: 'local', backend: sqlite(path) },
  });
  const call = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId, 'x-fc-async-delay': '1', ...headers };
  const call202 = await handler(fcHttpEvent({ method: 'POST', url: '/admin/delete', body, headers: call }), {});
  expect(call202.statusCode).toBe(202);
  await handler.close({ timeoutMs: 50 });
}

describe('isMiddlewareReplay: the mark travels with the task (sqlite)', () => {
  it('a task createHandler(app) accepted anonymously is no replay when a listen() deployment sharing the store runs it', async () => {
    const path = tasksFile();
    await acceptedByHandler(path, 'anon');
    const b = await listening(path);
    const task = await ended(b.middleware, 'anon');
    expect(b.ran).toEqual([]);
    expect(JSON.parse(task.returnPayload ?? '{}')).toEqual({ code: 'Unauthorized' });
  });

  it('a caller cannot mark its task: headers and a body naming the mark change nothing', async () => {
    const path = tasksFile();
    const forged = {
      'x-fc-async-accepted-by-middleware': 'true',
      acceptedbymiddleware: 'true',
      'x-fc-retry-count': '1',
      'content-type': 'application/json',
    };
    await acceptedByHandler(path, 'forged', forged, JSON.stringify({ acceptedByMiddleware: true }));
    const b = await listening(path);
    const task = await ended(b.middleware, 'forged');
    expect(b.ran).toEqual([]);
    expect(JSON.parse(task.returnPayload ?? '{}')).toEqual({ code: 'Unauthorized' });
    expect(JSON.parse(task.taskPayload ?? '{}')).not.toHaveProperty('acceptedByMiddleware');
  });

  it('a restart of the same listen() deployment still lets its own queued task through, and the task API does not show the mark', async () => {
    const path = tasksFile();
    const first = await listening(path);
    const url = `http://127.0.0.1:${first.server.port}/admin/delete`;
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'mine', 'x-fc-async-delay': '1' };
    const r = await fetch(url, { method: 'POST', headers: { ...headers, authorization: 'Bearer good' } });
    expect(r.status).toBe(202);
    await first.server.close();
    expect(first.ran).toEqual([]);
    const again = await listening(path);
    const task = await ended(again.middleware, 'mine');
    expect(again.ran).toEqual([{ replay: true, authorization: undefined, source: 'local-queue' }]);
    expect(JSON.parse(task.returnPayload ?? '{}')).toEqual({ deleted: true });
    const listed = await again.middleware.tasks.list({ includePayload: true });
    expect(JSON.parse(listed.tasks[0]?.taskPayload ?? '{}')).not.toHaveProperty('acceptedByMiddleware');
  });
});
