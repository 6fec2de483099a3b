import { describe, expect, it } from 'vitest';
import { taskRecord } from '../src/conformance.js';
import { MemoryTaskStore, type TaskRecord } from '../src/index.js';

/** Inserts `taskId` and records it as the engine records a task its queue refused. */
function refuse(store: MemoryTaskStore, taskId: string, body = Buffer.alloc(0)): void {
  const base = taskRecord(taskId);
  store.insert({ ...base, payload: { ...base.payload, body } });
  store.transition(taskId, 'Invalid', { from: ['Enqueued'], patch: { endTime: Date.now() } });
}

/** Inserts `taskId` and ends it `Succeeded`. */
function finish(store: MemoryTaskStore, taskId: string): void {
  store.insert(taskRecord(taskId));
  store.transition(taskId, 'Succeeded', { from: ['Enqueued'], patch: { endTime: Date.now() } });
}

describe('MemoryTaskStore: a task that takes the id of one the queue refused (Invalid)', () => {
  it('is never evicted for the refused task that finished before it: it goes when it has finished itself', () => {
    const store = new MemoryTaskStore({ maxTasks: 2 });
    refuse(store, 't_x');
    const again: TaskRecord = taskRecord('t_x', { requestId: 'again' });
    expect(store.insert(again)).toBe(true);
    for (const id of ['t_a', 't_b', 't_c', 't_d']) finish(store, id);
    // The refused task finished first: its place in the finish order is not the new task's.
    expect(store.get('t_x')).toBe(again);
    store.transition('t_x', 'Running', { from: ['Enqueued'] });
    store.transition('t_x', 'Succeeded', { from: ['Running'], patch: { endTime: Date.now() } });
    finish(store, 't_e');
    expect(store.get('t_x')).toBe(again);
    finish(store, 't_f');
    expect(store.get('t_x')).toBeUndefined();
  });

  it('no longer counts the refused task against maxTasks and maxBytes', () => {
    const store = new MemoryTaskStore({ maxTasks: 2, maxBytes: 100 });
    finish(store, 't_a');
    refuse(store, 't_x', Buffer.alloc(60));
    expect(store.insert(taskRecord('t_x', { requestId: 'again' }))).toBe(true);
    finish(store, 't_b');
    // Two tasks finished and kept (t_a, t_b), the refused one's 60 bytes gone with it.
    expect([store.get('t_a')?.status, store.get('t_b')?.status, store.size]).toEqual(['Succeeded', 'Succeeded', 3]);
    const bytes = new MemoryTaskStore({ maxBytes: 100 });
    finish(bytes, 't_a');
    refuse(bytes, 't_x', Buffer.alloc(60));
    bytes.insert(taskRecord('t_x', { requestId: 'again' }));
    const forty = taskRecord('t_40', { payload: { ...taskRecord('t_40').payload, body: Buffer.alloc(40) } });
    bytes.insert(forty);
    bytes.transition('t_40', 'Failed', { from: ['Enqueued'], patch: { endTime: Date.now() } });
    // 4 + 40 bytes held, not 104: the oldest finished task stays.
    expect([bytes.get('t_a')?.status, bytes.get('t_40')?.status]).toEqual(['Succeeded', 'Failed']);
    const big = taskRecord('t_big', { payload: { ...taskRecord('t_big').payload, body: Buffer.alloc(90) } });
    store.insert(big);
    store.transition('t_big', 'Failed', { from: ['Enqueued'], patch: { endTime: Date.now() } });
    // Past maxTasks the oldest goes; 94 + 4 bytes held then, within maxBytes: t_b stays.
    expect([store.get('t_a'), store.get('t_b')?.status, store.get('t_big')?.status]).toEqual([
      undefined,
      'Succeeded',
      'Failed',
    ]);
  });
});
