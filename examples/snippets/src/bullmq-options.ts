import { bullmq } from '@fc-async/bullmq';

export const backend = bullmq({
  connection: 'redis://10.0.0.5:6379/0', // or ioredis options
  prefix: 'transcode', // default 'fc-async': functions sharing a Redis need their own
  worker: true, // false: accept and answer the task API, run nothing
  lockDurationMs: 30_000, // a dead instance's tasks go to another after this long
  stalledIntervalMs: 30_000, // how often workers look for them
});
