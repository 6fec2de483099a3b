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
});
