import { MemoryTaskStore, type TaskRecord, type TaskStore } from '@fc-async/core';
import {
  type OpenedTaskStore,
  type OpenTaskStore,
  type TaskStoreCase,
  taskRecord,
  taskStoreCases,
} from '@fc-async/core/conformance';
import { expectAssignable, expectError, expectType } from 'tsd';

expectType<readonly TaskStoreCase[]>(taskStoreCases);
expectError(taskStoreCases.push({ name: 'mine', run: async () => {} }));
expectType<TaskRecord>(taskRecord('t_1'));
expectType<TaskRecord>(taskRecord('t_1', { status: 'Running', attempts: 1 }));
expectError(taskRecord('t_1', { status: 'Done' }));

const open: OpenTaskStore = async (retention) => {
  const store: TaskStore = new MemoryTaskStore(retention);
  return { store, reopen: async () => store, prune: async () => 0 };
};
expectType<Promise<OpenedTaskStore>>(open({ maxTasks: 600, retentionMs: 60_000 }));
expectError<OpenTaskStore>(async () => ({ store: new MemoryTaskStore() }));
for (const c of taskStoreCases) {
  expectType<string>(c.name);
  expectType<Promise<void>>(c.run(open));
}
expectAssignable<TaskStoreCase>({ name: 'my store only', run: async (o: OpenTaskStore) => void (await o()).store });
expectType<true | undefined>(taskStoreCases[0]?.usesPrune);
expectType<true | undefined>(taskStoreCases[0]?.replacesInvalid);
