import { type AsyncBackend, createFcHandler } from '@fc-async/core';
import { type SqliteBackendOptions, sqlite } from '@fc-async/sqlite';
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';

expectType<AsyncBackend>(sqlite('./data/tasks.db'));
expectType<AsyncBackend>(
  sqlite('./data/tasks.db', {
    synchronous: 'normal',
    maxTasks: 1000,
    retentionMs: 3_600_000,
    pruneIntervalMs: 10_000,
    openTimeoutMs: 0,
  }),
);
createFcHandler((_req, res) => res.end('ok'), { async: { backend: sqlite('./data/tasks.db') } });

expectAssignable<SqliteBackendOptions>({});
expectNotAssignable<SqliteBackendOptions>({ synchronous: 'off' });
expectError(sqlite());
expectError(sqlite(42));
expectError(sqlite('./t.db', { synchronous: 'extra' }));
