import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { fcAsync } from '../src/index.js';
import { logger } from './event.js';

// The behaviour every framework shares runs in packages/test-kit (middleware, listen, tracing).
describe('fastify fcAsync plugin, Fastify only', () => {
  it('app.close() lets running async tasks finish', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const app = Fastify();
    await app.register(fcAsync, { logger: logger(), env: {} });
    app.post('/slow', async () => {
      await gate;
      return 'done';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const r = await fetch(`${url}/slow`, { method: 'POST', headers: { 'x-fc-async-task-id': 'slow' } });
    expect(r.status).toBe(202);
    const closed = app.close();
    setTimeout(release, 50);
    await closed;
    expect((await app.fcAsync?.tasks.get('slow'))?.status).toBe('Succeeded');
  });

  it('app.close() runs the tasks still queued through the app before Fastify stops routing', async () => {
    // Fastify answers 503 to anything routed once close() began: the queued tasks were replayed
    // into it, retried, and failed (close-with-grace, fastify-cli and test teardowns call it).
    const app = Fastify();
    await app.register(fcAsync, { logger: logger(), env: {}, async: { concurrency: 1 } });
    app.post('/job', async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return 'done';
    });
    for (const id of ['queued_1', 'queued_2', 'queued_3']) {
      const r = await app.inject({ method: 'POST', url: '/job', headers: { 'x-fc-async-task-id': id } });
      expect(r.statusCode).toBe(202);
    }
    await app.close();
    const statuses = await Promise.all(
      ['queued_1', 'queued_2', 'queued_3'].map(async (id) => (await app.fcAsync?.tasks.get(id))?.status),
    );
    expect(statuses).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
  });

  it('app.close(callback) does the same, and calls back once closed', async () => {
    const app = Fastify();
    await app.register(fcAsync, { logger: logger(), env: {} });
    app.post('/job', async () => 'done');
    expect(
      (await app.inject({ method: 'POST', url: '/job', headers: { 'x-fc-async-task-id': 'cb_1' } })).statusCode,
    ).toBe(202);
    await new Promise<void>((resolve, reject) => app.close((error?: Error) => (error ? reject(error) : resolve())));
    expect((await app.fcAsync?.tasks.get('cb_1'))?.status).toBe('Succeeded');
  });

  it('a prefix given at register does not narrow it (docs/deploy.md): every route takes async calls', async () => {
    const app = Fastify();
    await app.register(fcAsync, { logger: logger(), env: {}, prefix: '/jobs' });
    app.post('/jobs/render', async () => 'rendered');
    app.post('/other', async () => 'other');
    for (const [url, id] of [
      ['/jobs/render', 'prefixed'],
      ['/other', 'elsewhere'],
    ] as const) {
      const r = await app.inject({ method: 'POST', url, headers: { 'x-fc-async-task-id': id } });
      expect([url, r.statusCode]).toEqual([url, 202]);
    }
    await app.fcAsync?.drain();
    expect((await app.fcAsync?.tasks.get('elsewhere'))?.returnPayload).toBe('other');
    await app.close();
  });

  it('replays the URL the client sent, so that rewriteUrl is applied once', async () => {
    const seen: string[] = [];
    const app = Fastify({ rewriteUrl: (req) => `/v1${req.url}` });
    await app.register(fcAsync, { logger: logger(), env: {} });
    app.post('/v1/job', async (request) => {
      seen.push(`${request.url} ${request.fc?.type}`);
      return 'done';
    });
    const r = await app.inject({ method: 'POST', url: '/job?x=1', headers: { 'x-fc-async-task-id': 'rewritten' } });
    expect(r.statusCode).toBe(202);
    await app.fcAsync?.drain();
    expect(seen).toEqual(['/v1/job?x=1 Async']);
    expect((await app.fcAsync?.tasks.get('rewritten'))?.status).toBe('Succeeded');
    await app.close();
  });
});

describe('fcAsync registered inside an encapsulated plugin', () => {
  it('is refused with a clear error (it covered that plugin only, and app.fcAsync was undefined)', async () => {
    const app = Fastify();
    app.register(
      async (v1) => {
        await v1.register(fcAsync, { logger: logger(), env: {} });
      },
      { prefix: '/v1' },
    );
    await expect(app.ready()).rejects.toMatchObject({ code: 'FcAsyncNotOnRoot' });
  });
});
