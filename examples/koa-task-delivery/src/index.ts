import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHandler } from '@fc-async/koa';
import { createApp } from './app.js';
import { fileDeliveryStore } from './deliveries.js';
import { outboxSender } from './sender.js';

// On FC's built-in nodejs20 runtime only /tmp is writable, and it belongs to one instance: point
// the dedup store at a shared one (Redis, a database) before several instances run tasks.
const dir = process.env.NOTIFICATIONS_DIR ?? join(tmpdir(), 'koa-task-delivery');

export const handler = createHandler(
  createApp({
    sender: outboxSender(join(dir, 'outbox.jsonl')),
    deliveries: fileDeliveryStore(join(dir, 'deliveries.jsonl')),
  }),
  { async: { maxAsyncRetryAttempts: 3 } },
);
