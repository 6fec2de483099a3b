import type { DestinationRecord } from '@fc-async/core';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

/** A value every operation on which throws: reading any field, its prototype, its keys. */
function hostileProxy(): object {
  const traps = new Proxy(
    {},
    {
      get() {
        throw new Error('trap');
      },
    },
  );
  return new Proxy({}, traps);
}

const thrown: [string, () => unknown][] = [
  ['a Proxy whose every trap throws', hostileProxy],
  [
    'an object whose status getter throws',
    () => ({
      get status(): number {
        throw new Error('status getter');
      },
    }),
  ],
];

describe('an async task whose Express route throws a value that cannot be read', () => {
  it.each(thrown)('%s: the attempt fails at once, with one onFailure record', async (_, value) => {
    const app = express();
    app.post('/job', () => {
      throw value();
    });
    app.post('/late', (_req, res, next) => {
      res.write('partial');
      next(value());
    });
    const failures: DestinationRecord[] = [];
    const log = logger();
    const handler = createHandler(app, {
      logger: log,
      env: {},
      // Before the fix the finisher threw out of the router: the attempt hung until this timeout.
      async: { mode: 'local', maxAsyncRetryAttempts: 0, timeoutSeconds: 10 },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    for (const path of ['/job', '/late']) {
      const taskId = `t${path.slice(1)}`;
      const accepted = await handler(
        event('POST', path, '{}', { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': taskId }),
        {},
      );
      expect(accepted.statusCode).toBe(202);
    }
    await handler.drain();
    expect(await handler.tasks.get('tjob')).toMatchObject({
      status: 'Failed',
      taskErrorMessage: 'The function answered HTTP 500',
    });
    expect((await handler.tasks.get('tlate'))?.status).toBe('Failed');
    expect(failures.map((r) => r.requestContext.condition)).toEqual([
      'UnhandledInvocationError',
      'UnhandledInvocationError',
    ]);
    expect(failures.map((r) => r.responseContext.statusCode).sort()).toEqual([500, 502]);
    // Each failure logged once, by the adapter.
    expect(log.errors).toHaveLength(2);
    await handler.close();
  });
});
