import { describe, expect, it } from 'vitest';
import {
  decodeCompactRecord,
  encodeCompactRecord,
  encodeRequestHead,
  MemoryTaskStore,
  patchedRecord,
  type TaskRecord,
  transitionedRecord,
} from '../src/index.js';

const record: TaskRecord = {
  taskId: 'task-1',
  requestId: 'req-1',
  status: 'Failed',
  functionArn: 'acs:fc:cn-hangzhou:123:functions/f',
  qualifier: 'LATEST',
  alreadyRetriedTimes: 2,
  acceptedAt: 1_764_000_000_000,
  attempts: 3,
  events: [
    { eventId: 1, status: 'Enqueued', timestamp: 1_764_000_000_000, eventDetail: '' },
    { eventId: 2, status: 'Failed', timestamp: 1_764_000_000_900, eventDetail: 'boom "quoted" \u2028 ✓' },
  ],
  startedTime: 1_764_000_000_001,
  endTime: 1_764_000_000_900,
  durationMs: 899,
  taskErrorMessage: 'UnhandledInvocationError',
  returnPayload: '{"error":"x"}',
  deliveryPending: true,
  lastStatusCode: 500,
  lastErrorType: 'DiskFull',
  payload: { method: 'POST', url: '/a?b=1', headers: { 'content-type': 'text/plain' }, body: Buffer.from('hi') },
};

describe('the compact record codec', () => {
  it('round-trips every field but the payload, events and awkward strings included', () => {
    const { payload, ...rest } = record;
    expect(decodeCompactRecord(encodeCompactRecord(record))).toEqual(rest);
  });

  it('is smaller than JSON.stringify of the same record and leaves undefined fields out', () => {
    const { payload, ...rest } = record;
    const text = encodeCompactRecord({ ...record, condition: undefined });
    expect(text.length).toBeLessThan(JSON.stringify(rest).length);
    expect(JSON.parse(text)).not.toHaveProperty('c');
  });

  it('reads a record written with its field names in full as it is', () => {
    const { payload, ...rest } = record;
    expect(decodeCompactRecord(JSON.stringify(rest))).toEqual(rest);
  });

  it('writes the request head without its body', () => {
    expect(JSON.parse(encodeRequestHead(record.payload))).toEqual({
      method: 'POST',
      url: '/a?b=1',
      headers: { 'content-type': 'text/plain' },
    });
  });
});

describe('patchedRecord', () => {
  it('copies the record with the patch, status and events applied, leaving the original alone', () => {
    const events = [...record.events, { eventId: 3, status: 'Succeeded' as const, timestamp: 2, eventDetail: '' }];
    const next = patchedRecord(record, { durationMs: 5, taskErrorMessage: undefined }, 'Succeeded', events);
    expect(next).toMatchObject({ status: 'Succeeded', durationMs: 5, events, taskId: 'task-1' });
    expect(next).not.toHaveProperty('taskErrorMessage');
    expect(record.status).toBe('Failed');
    expect(record.taskErrorMessage).toBe('UnhandledInvocationError');
  });
});

describe('transitionedRecord', () => {
  const running: TaskRecord = { ...record, status: 'Enqueued', events: record.events.slice(0, 1) };

  it('adds the via and status events, applies the patch, and leaves the current record alone', () => {
    const next = transitionedRecord(running, 'Running', {
      from: ['Enqueued'],
      via: 'Dequeued',
      detail: 'attempt 1',
      patch: (current) => ({ attempts: current.attempts + 1 }),
    });
    expect(next?.status).toBe('Running');
    expect(next?.attempts).toBe(record.attempts + 1);
    expect(next?.events.map((e) => [e.eventId, e.status, e.eventDetail])).toEqual([
      [1, 'Enqueued', ''],
      [2, 'Dequeued', ''],
      [3, 'Running', 'attempt 1'],
    ]);
    expect(running.events).toHaveLength(1);
    expect(running.status).toBe('Enqueued');
  });

  it("dates the event of a change that ends the task at the patch's endTime", () => {
    const live: TaskRecord = { ...record, status: 'Running' };
    const next = transitionedRecord(live, 'Succeeded', { from: ['Running'], patch: { endTime: 1_700_000_000_123 } });
    expect(next?.events.at(-1)).toMatchObject({ status: 'Succeeded', timestamp: 1_700_000_000_123 });
  });

  it('refuses a record whose status is not one of from', () => {
    expect(transitionedRecord(running, 'Running', { from: ['Running'] })).toBeUndefined();
  });

  it('refuses an attempt end that names another attempt than the task last started', () => {
    const live: TaskRecord = { ...record, status: 'Running', attempts: 2 };
    expect(transitionedRecord(live, 'Failed', { from: ['Running'], attempts: 1 })).toBeUndefined();
    expect(transitionedRecord(live, 'Failed', { from: ['Running'], attempts: 2 })?.status).toBe('Failed');
  });
});

describe('MemoryTaskStore.transition', () => {
  it('applies an attempt end only for the attempt the task last started', () => {
    const store = new MemoryTaskStore();
    store.insert({ ...record, status: 'Running', attempts: 2 });
    expect(store.transition(record.taskId, 'Succeeded', { from: ['Running'], attempts: 1 })).toBeUndefined();
    expect(store.get(record.taskId)?.status).toBe('Running');
    expect(store.transition(record.taskId, 'Succeeded', { from: ['Running'], attempts: 2 })?.status).toBe('Succeeded');
  });
});
