import { once } from 'node:events';
import { connect } from 'node:net';
import type { DestinationRecord, FcServer } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { middlewareTargets, recordingLogger } from '../src/index.js';
import { until, within } from '../src/wait.js';

// A custom runtime (fcAsync + listen) facing peers and app handlers that go quiet: nothing waits forever.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe.each(middlewareTargets)('$name custom runtime with a quiet peer', (target) => {
  it('an async replay whose handler never answers fails at timeoutSeconds, and onFailure gets it', async () => {
    const failures: DestinationRecord[] = [];
    const built = await target.build({
      fcAsync: {
        logger: recordingLogger(),
        env: {},
        async: { mode: 'local', timeoutSeconds: 1, maxAsyncRetryAttempts: 0, stopGraceMs: 100 },
        destinations: { onFailure: (record) => void failures.push(record) },
      },
      routes: [{ method: 'POST', path: '/never', handle: () => new Promise(() => {}) }],
    });
    const fc = await built.listen({ logger: recordingLogger(), signals: [], host: '127.0.0.1', port: 0 });
    cleanups.push(() => within(fc.close(), 10_000));
    const url = `http://127.0.0.1:${fc.port}`;
    const accepted = await fetch(`${url}/never`, { method: 'POST', headers: { 'x-fc-async-task-id': 'never' } });
    expect(accepted.status).toBe(202);
    const [failure] = await until(() => (failures.length > 0 ? failures : undefined), 'the onFailure record', 8000);
    expect(failures).toHaveLength(1);
    expect(failure?.requestContext.condition).toBe('InvocationError');
    const task = await built.controls?.tasks.get('never');
    expect([task?.status, task?.destinationStatus]).toEqual(['Failed', 'Succeeded']);
  }, 15_000);

  it('close() ends within its budget while a request body never completes and a keep-alive connection idles', async () => {
    const built = await target.build({
      fcAsync: { logger: recordingLogger(), env: {}, async: { mode: 'local' } },
      routes: [
        { method: 'POST', path: '/job', handle: () => ({ body: 'ok' }) },
        { method: 'GET', path: '/ok', handle: () => ({ body: 'ok' }) },
      ],
      before: 'body-parser',
    });
    const fc: FcServer = await built.listen({
      logger: recordingLogger(),
      signals: [],
      host: '127.0.0.1',
      port: 0,
      shutdownTimeoutMs: 1000,
      preStopTimeoutMs: 500,
    });
    cleanups.push(() => within(fc.close(), 10_000));
    const ends: Promise<string>[] = [];
    for (const async of [false, true]) {
      const socket = connect(fc.port, '127.0.0.1');
      cleanups.push(() => socket.destroy());
      await once(socket, 'connect');
      ends.push(new Promise((resolve) => socket.once('close', () => resolve('closed'))));
      socket.on('error', () => undefined);
      const headers = async ? 'x-fc-invocation-type: Async\r\n' : '';
      socket.write(
        `POST /job HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${headers}content-length: 100\r\n\r\n{"a":`,
      );
    }
    // And a keep-alive connection left idle after its answer.
    const idle = connect(fc.port, '127.0.0.1');
    cleanups.push(() => idle.destroy());
    await once(idle, 'connect');
    ends.push(new Promise((resolve) => idle.once('close', () => resolve('closed'))));
    idle.write('GET /ok HTTP/1.1\r\nhost: x\r\n\r\n');
    await once(idle, 'data');
    idle.resume();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(
      await within(
        fc.close().then(() => 'closed'),
        8000,
      ),
    ).toBe('closed');
    expect(await Promise.all(ends.map((end) => within(end, 2000)))).toEqual(['closed', 'closed', 'closed']);
  }, 15_000);
});
