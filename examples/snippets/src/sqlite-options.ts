import { sqlite } from '@fc-async/sqlite';

export const backend = sqlite('./data/tasks.db', {
  synchronous: 'full', // flush the accept to disk before the 202 ('normal': commit without a flush)
  maxTasks: 100_000, // finished tasks kept, oldest finished first
  retentionMs: 7 * 24 * 3600 * 1000, // and for at most this long
});
