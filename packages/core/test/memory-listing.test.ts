import { describe, expect, it } from 'vitest';
import { taskRecord } from '../src/conformance.js';
import { MemoryTaskStore } from '../src/index.js';

// The memory store lists through an index in (startedTime, taskId) order, built at the first page
// and kept in step from then on: what it lists must stay what the map holds, in that order.

const ids = (store: MemoryTaskStore, query = {}) => store.list({ limit: 100, ...query }).tasks.map((t) => t.taskId);

describe('MemoryTaskStore listing, once its index is built', () => {
  it('orders a task by its new startedTime after an update moves it', () => {
    const store = new MemoryTaskStore();
    for (const [id, at] of [
      ['t_a', 1000],
      ['t_b', 2000],
      ['t_c', 3000],
    ] as const)
      store.insert(taskRecord(id, { startedTime: at }));
    expect(ids(store, { sortOrderByTime: 'asc' })).toEqual(['t_a', 't_b', 't_c']);
    store.update('t_a', { startedTime: 4000 });
    expect(ids(store, { sortOrderByTime: 'asc' })).toEqual(['t_b', 't_c', 't_a']);
    // And keeps in step with inserts after the rebuild.
    store.insert(taskRecord('t_d', { startedTime: 2500 }));
    expect(ids(store, { sortOrderByTime: 'asc' })).toEqual(['t_b', 't_d', 't_c', 't_a']);
  });

  it('lists a task inserted out of time order in its place, and not one evicted since', () => {
    const store = new MemoryTaskStore({ maxTasks: 1 });
    store.insert(taskRecord('t_late', { startedTime: 5000 }));
    expect(ids(store)).toEqual(['t_late']);
    store.insert(taskRecord('t_early', { startedTime: 1000 }));
    expect(ids(store, { sortOrderByTime: 'asc' })).toEqual(['t_early', 't_late']);
    for (const id of ['t_early', 't_late'])
      store.transition(id, 'Succeeded', { from: ['Enqueued'], patch: { endTime: Date.now() } });
    // maxTasks 1: the first to finish is gone from the map, and so from the listing.
    expect(ids(store)).toEqual(['t_late']);
  });

  it('lists a refused task sent again when replacing it is the delete that compacts the index', () => {
    // maxTasks 1: each task that finishes evicts the one before; an evicted task's entry stays in
    // the index (skipped) until they are half of it, then the index is compacted.
    const store = new MemoryTaskStore({ maxTasks: 1 });
    const now = Date.now();
    for (let i = 0; i < 1024; i++)
      store.insert(taskRecord(`t_${String(i).padStart(4, '0')}`, { startedTime: now + i }));
    expect(ids(store, { limit: 1 })).toEqual(['t_1023']);
    for (let i = 0; i < 512; i++) {
      store.transition(`t_${String(i).padStart(4, '0')}`, 'Succeeded', { from: ['Enqueued'], patch: { endTime: now } });
    }
    // The queue refuses `x`: Invalid, the last to finish (t_0511 goes: 512 entries gone of 1,025).
    store.insert(taskRecord('x', { startedTime: now + 2000 }));
    store.transition('x', 'Invalid', { from: ['Enqueued'], patch: { endTime: now } });
    // Sent again: its old entry is the 513th gone, which compacts the index as the new one goes in.
    expect(store.insert(taskRecord('x', { startedTime: now + 3000 }))).toBe(true);
    expect(ids(store, { prefix: 'x' })).toEqual(['x']);
    expect(ids(store, { limit: 2 })).toEqual(['x', 't_1023']);
    expect(store.list({ limit: 100, status: 'Enqueued' }).tasks).toHaveLength(100);
  });
});
