import { bullmq } from '@fc-async/bullmq';
import { createHandler } from '@fc-async/fastify';
import Fastify from 'fastify';

// `REDIS_URL=redis://10.0.0.5:6379 npx fc-async dev watch-deployment.ts --name orders`: the dashboard
// and FC's task API on the tasks of every instance sharing this Redis and prefix. worker: false: it
// lists, reads and stops their tasks (a stop reaches the instance running it), and runs none of them.
export const handler = createHandler(Fastify(), {
  async: {
    backend: bullmq({
      connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      prefix: 'orders', // the deployment's own prefix
      worker: false,
      maxTasks: 100_000, // and its retention: every instance of a prefix prunes, this one too
    }),
  },
});
