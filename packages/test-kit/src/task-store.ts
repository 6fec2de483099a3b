import { type TaskStoreCase, taskRecord } from '@fc-async/core/conformance';
import { expect } from 'vitest';

// The TaskStore conformance table is public (`@fc-async/core/conformance`); the durable stores'
// tests run exactly that table, through this path they import it by.
export {
  type OpenedTaskStore,
  type OpenTaskStore,
  type TaskStoreCase,
  taskRecord,
  taskStoreCases,
} from '@fc-async/core/conformance';

/**
 * What the durable stores do beyond the public table, which lets a store list the bodies: they
 * leave them out of a `list` without `includePayload` (a page of 100 tasks reads no 128 KB bodies).
 */
export const leanListCase: TaskStoreCase = {
  name: 'lists payload bodies only when asked',
  async run(open) {
    const { store } = await open();
    await store.insert(taskRecord('t_1'));
    expect((await store.list({})).tasks[0]?.payload.body.length).toBe(0);
    const withPayload = await store.list({ limit: 1, includePayload: true });
    expect(withPayload.tasks[0]?.payload.body).toEqual(Buffer.from([0, 1, 2, 255]));
  },
};
