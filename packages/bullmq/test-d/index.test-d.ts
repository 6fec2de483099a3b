import { type BullmqBackendOptions, type BullmqClusterConnection, bullmq } from '@fc-async/bullmq';
import { type AsyncBackend, createFcHandler } from '@fc-async/core';
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';

expectType<AsyncBackend>(bullmq({ connection: 'redis://127.0.0.1:6379' }));
expectType<AsyncBackend>(
  bullmq({
    connection: { host: '10.0.0.5', port: 6380, password: 'secret', db: 2 },
    prefix: 'transcode',
    worker: false,
    lockDurationMs: 10_000,
    stalledIntervalMs: 5_000,
    maxTasks: 1000,
    retentionMs: 3_600_000,
    pruneIntervalMs: 10_000,
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 2_000,
  }),
);
expectType<AsyncBackend>(
  bullmq({
    connection: {
      cluster: ['redis://10.0.0.5:6379', { host: '10.0.0.6', port: 6379 }],
      redisOptions: { password: 's' },
    },
    prefix: '{transcode}',
  }),
);
createFcHandler((_req, res) => res.end('ok'), { async: { backend: bullmq({ connection: 'redis://127.0.0.1' }) } });

expectAssignable<BullmqBackendOptions>({ connection: 'redis://h' });
expectNotAssignable<BullmqBackendOptions>({ prefix: 'x' });
expectAssignable<BullmqClusterConnection>({ cluster: ['redis://10.0.0.5:6379'], scaleReads: 'master' });
expectNotAssignable<BullmqClusterConnection>({ cluster: [{ host: '10.0.0.5' }] });
expectError(bullmq());
expectError(bullmq({ connection: 'redis://h', worker: 'yes' }));
expectError(bullmq({ connection: 'redis://h', commandTimeoutMs: '5s' }));
