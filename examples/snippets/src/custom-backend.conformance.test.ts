import { silentLogger } from '@fc-async/core';
import { type OpenTaskStore, taskStoreCases } from '@fc-async/core/conformance';
import { it } from 'vitest'; // or: import { it } from 'node:test';
import { taskTable } from './custom-backend.js';
import { memoryTable } from './memory-table.js';

// Fresh storage for each case: the task table of custom-backend.ts, here on a table in memory.
const open: OpenTaskStore = async () => {
  const table = memoryTable();
  const storeOn = async () => (await taskTable(table).create({ concurrency: 1, logger: silentLogger })).store;
  const store = await storeOn();
  // `reopen`: the same tasks through another store, as after a restart; `prune`: a pass (none here).
  return { store, reopen: storeOn, prune: async () => 0 };
};

// This store keeps every task (no pruning pass of its own): the cases that call `prune()` are left out;
// and its insert refuses every id it holds, an Invalid one too: the cases that replace one are left out.
for (const c of taskStoreCases.filter((c) => !c.usesPrune && !c.replacesInvalid)) it(c.name, () => c.run(open));
