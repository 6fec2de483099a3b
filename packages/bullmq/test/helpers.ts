import { randomBytes } from 'node:crypto';
import type { AsyncTaskStatus, FcHttpEvent, TaskRecord } from '@fc-async/core';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { keysOf } from '../src/keys.js';
import { RedisTaskStore } from '../src/store.js';

/** A prefix no other test uses, so tests share the one redis-server without seeing each other. */
export function uniquePrefix(): string {
  return `test-${randomBytes(6).toString('hex')}`;
}

/** A store on its own connections, closed by the returned function. */
export async function openStore(prefix: string): Promise<{ store: RedisTaskStore; close: () => Promise<void> }> {
  const redis = new Redis(inject('redisUrl'));
  const subscriber = redis.duplicate();
  const store = new RedisTaskStore(redis, subscriber, keysOf(prefix));
  await store.listen();
  return { store, close: () => store.close() };
}

/** A task record as the engine builds it, with overrides. */
export function record(taskId: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = overrides.acceptedAt ?? Date.now();
  const status: AsyncTaskStatus = overrides.status ?? 'Enqueued';
  return {
    taskId,
    requestId: `1-64f6d6e7-${taskId.padStart(24, '0').slice(-24)}`,
    status,
    functionArn: 'acs:fc:local:0:functions/demo',
    qualifier: 'LATEST',
    startedTime: now,
    alreadyRetriedTimes: 0,
    events: [{ eventId: 1, status: 'Enqueued', timestamp: now, eventDetail: '' }],
    payload: {
      method: 'POST',
      url: '/jobs?x=1',
      headers: { 'content-type': 'application/octet-stream', 'x-fc-async-task-id': taskId },
      body: Buffer.from([0, 1, 2, 255]),
    },
    acceptedAt: now,
    attempts: 0,
    ...overrides,
  };
}

/** An async FC 3.0 event with a caller-chosen task id and a JSON body. */
export function asyncEvent(taskId: string, body: unknown = {}, headers: Record<string, string> = {}): FcHttpEvent {
  return {
    version: 'v1',
    rawPath: '/jobs',
    body: JSON.stringify(body),
    isBase64Encoded: false,
    headers: {
      'Content-Type': 'application/json',
      'X-Fc-Invocation-Type': 'Async',
      'X-Fc-Async-Task-Id': taskId,
      ...headers,
    },
    queryParameters: {},
    requestContext: { accountId: '123', http: { method: 'POST', path: '/jobs', sourceIp: '127.0.0.1' } },
  };
}

export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
