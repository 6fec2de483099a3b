import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTaskStatus, FcHttpEvent, TaskRecord } from '@fc-async/core';

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-sqlite-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
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

/** An async FC 3.0 event with a caller-chosen task id. */
export function asyncEvent(taskId: string, headers: Record<string, string> = {}): FcHttpEvent {
  return {
    version: 'v1',
    rawPath: '/jobs',
    body: Buffer.from(`{"task":"${taskId}"}`).toString('base64'),
    isBase64Encoded: true,
    headers: {
      'Content-Type': 'application/json',
      'X-Fc-Invocation-Type': 'Async',
      'X-Fc-Async-Task-Id': taskId,
      ...headers,
    },
    queryParameters: {},
    requestContext: {
      accountId: '123',
      http: { method: 'POST', path: '/jobs', sourceIp: '127.0.0.1' },
      timeEpoch: String(Date.now()),
    },
  };
}
