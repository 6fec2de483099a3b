import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@fc-async/core';
import { createHandler } from '@fc-async/koa';
import { createApp } from './app.js';
import { fileDeliveryStore } from './deliveries.js';
import { fcContext, fcEvent } from './fc-event.js';
import { type OutboxEntry, outboxSender } from './sender.js';

const dir = await mkdtemp(join(tmpdir(), 'koa-task-delivery-'));
const outboxFile = join(dir, 'outbox.jsonl');
const say = (text: string) => console.log(`\n# ${text}`);

// The step after sending fails once, for one task: the notification is out, the attempt is not.
let failuresLeft = 1;
const app = createApp({
  sender: outboxSender(outboxFile),
  deliveries: fileDeliveryStore(join(dir, 'deliveries.jsonl')),
  async onDelivered(_notification, _delivery, invocation) {
    if (invocation.taskId === 'welcome_grace' && failuresLeft-- > 0) throw new Error('the orders service timed out');
  },
});

// Off FC: fc-async's local queue answers 202 and runs the tasks, with retries.
const local = createHandler(app, {
  async: { backoff: { baseMs: 200 } },
  logger: { ...silentLogger, error: (message, fields) => console.log(`  (log: ${message}: ${fields?.error})`) },
});
const post = (taskId: string, to: string) =>
  fcEvent(
    '/notifications',
    { to, subject: 'Welcome', text: 'Glad to have you.' },
    {
      'X-Fc-Invocation-Type': 'Async',
      'X-Fc-Async-Task-Id': taskId,
    },
  );

say('three distinct tasks, queued locally');
for (const [taskId, to] of [
  ['welcome_ada', 'ada@example.com'],
  ['welcome_alan', 'alan@example.com'],
  ['welcome_grace', 'grace@example.com'],
]) {
  const accepted = await local(post(taskId as string, to as string), fcContext);
  console.log(taskId, accepted.statusCode);
}
await local.drain();
for (const taskId of ['welcome_ada', 'welcome_alan', 'welcome_grace']) {
  const task = await local.tasks.get(taskId);
  console.log(taskId, task?.events.map((e) => e.status).join(' > '));
  console.log(' ', task?.returnPayload);
}
console.log('welcome_grace failed after sending; its retry found the delivery and did not send again');

// On FC: the platform queues and retries, and may run a task more than once (at least once).
say('FC runs welcome_ada again (at-least-once delivery): the same task id reaches the function');
const onFc = createHandler(app, { env: { FC_FUNCTION_NAME: 'notify', FC_REGION: 'cn-hangzhou' } });
const again = await onFc(post('welcome_ada', 'ada@example.com'), fcContext);
console.log(again.statusCode, again.body);

say(`the outbox (${outboxFile}): one notification per task`);
const outbox = (await readFile(outboxFile, 'utf8'))
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as OutboxEntry);
for (const entry of outbox) console.log(entry.idempotencyKey, '->', entry.to);
await local.close();
