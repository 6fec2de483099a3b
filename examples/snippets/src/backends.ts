import { bullmq } from '@fc-async/bullmq';
import { createHandler } from '@fc-async/express';
import { sqlite } from '@fc-async/sqlite';
import express from 'express';

const app = express();
app.post('/transcode', express.json(), (req, res) => {
  res.json({ queued: req.body.object });
});

// One machine: accepted tasks are committed to a file before the 202, and survive a crash.
export const handler = createHandler(app, {
  async: { backend: sqlite('./data/tasks.db') },
});

// Several machines behind a load balancer: one queue and one task list in Redis. Instances
// started with ROLE=api accept requests and answer the task API but run no task.
export const distributedHandler = createHandler(app, {
  async: {
    backend: bullmq({
      connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      prefix: 'transcode',
      worker: process.env.ROLE !== 'api',
    }),
  },
});
