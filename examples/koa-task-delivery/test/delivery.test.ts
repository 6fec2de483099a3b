import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@fc-async/core';
import { createHandler, type FcHandler } from '@fc-async/koa';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { fileDeliveryStore } from '../src/deliveries.js';
import { fcContext, fcEvent } from '../src/fc-event.js';
import type { Notification } from '../src/notification.js';
import { type OutboxEntry, outboxSender } from '../src/sender.js';

const root = await mkdtemp(join(tmpdir(), 'koa-task-delivery-test-'));
afterAll(() => rm(root, { recursive: true, force: true }));

const notification: Notification = { to: 'ada@example.com', subject: 'Welcome', text: 'Glad to have you.' };
const asyncCall = (taskId: string, extra: Record<string, string> = {}, body: unknown = notification) =>
  fcEvent('/notifications', body, { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': taskId, ...extra });

let dir: string;
let handlers: FcHandler[];

beforeEach(async () => {
  dir = await mkdtemp(join(root, 'case-'));
  handlers = [];
  return async () => {
    for (const handler of handlers) await handler.close();
  };
});

/** An app on this test's outbox and dedup store; `failAfterSend` tasks fail once, after sending. */
function app(failAfterSend: string[] = []) {
  const failed = new Set<string>();
  return createApp({
    sender: outboxSender(join(dir, 'outbox.jsonl')),
    deliveries: fileDeliveryStore(join(dir, 'deliveries.jsonl')),
    async onDelivered(_n, _d, invocation) {
      const key = invocation.taskId ?? invocation.requestId;
      if (failAfterSend.includes(key) && !failed.has(key)) {
        failed.add(key);
        throw new Error('the orders service timed out');
      }
    },
  });
}

/** Off FC: the local queue, quick retries. */
function localHandler(failAfterSend: string[] = []): FcHandler {
  const handler = createHandler(app(failAfterSend), {
    async: { backoff: { baseMs: 10, maxMs: 10 } },
    logger: silentLogger, // the failed attempts are logged; not in this test's output
  });
  handlers.push(handler);
  return handler;
}

/** On FC (platform mode): the function runs what FC hands it, retries included. */
function platformHandler(): FcHandler {
  return createHandler(app(), { env: { FC_FUNCTION_NAME: 'notify', FC_REGION: 'cn-hangzhou' } });
}

async function outbox(): Promise<OutboxEntry[]> {
  const text = await readFile(join(dir, 'outbox.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as OutboxEntry);
}

const sentPerTask = async () => {
  const counts: Record<string, number> = {};
  for (const entry of await outbox()) counts[entry.idempotencyKey] = (counts[entry.idempotencyKey] ?? 0) + 1;
  return counts;
};

describe('koa-task-delivery: one notification per task id', () => {
  it('delivers distinct tasks once each', async () => {
    const handler = localHandler();
    for (const id of ['welcome_1', 'welcome_2', 'welcome_3']) {
      expect((await handler(asyncCall(id), fcContext)).statusCode).toBe(202);
    }
    await handler.drain();
    expect(await sentPerTask()).toEqual({ welcome_1: 1, welcome_2: 1, welcome_3: 1 });
    for (const id of ['welcome_1', 'welcome_2', 'welcome_3']) {
      const task = await handler.tasks.get(id);
      expect(task?.status).toBe('Succeeded');
      expect(JSON.parse(task?.returnPayload ?? '')).toMatchObject({ duplicate: false, attempt: 0 });
    }
  });

  it('a retry after the attempt failed half-way (sent, then failed) does not send again', async () => {
    const handler = localHandler(['welcome_retry']);
    await handler(asyncCall('welcome_retry'), fcContext);
    await handler.drain();
    const task = await handler.tasks.get('welcome_retry');
    expect(task?.status).toBe('Succeeded');
    expect(task?.alreadyRetriedTimes).toBe(1);
    expect(task?.events.map((e) => e.status)).toContain('Retrying');
    const [entry] = await outbox();
    expect(JSON.parse(task?.returnPayload ?? '')).toEqual({ messageId: entry?.messageId, duplicate: true, attempt: 1 });
    expect(await sentPerTask()).toEqual({ welcome_retry: 1 });
  });

  it('FC running the same task twice on FC (platform mode) delivers once', async () => {
    const handler = platformHandler();
    const first = await handler(asyncCall('welcome_twice'), fcContext);
    // At least once: FC may run the task again, on this instance or another one sharing the store.
    const second = await platformHandler()(asyncCall('welcome_twice', { 'X-Fc-Retry-Count': '1' }), fcContext);
    expect(first.statusCode).toBe(200);
    expect(second.statusCode).toBe(200);
    const firstBody = JSON.parse(first.body);
    expect(firstBody.duplicate).toBe(false);
    expect(JSON.parse(second.body)).toEqual({ messageId: firstBody.messageId, duplicate: true, attempt: 1 });
    expect(await sentPerTask()).toEqual({ welcome_twice: 1 });
  });

  it('a task run again after a restart (a fresh queue, the same store) delivers once', async () => {
    const before = localHandler();
    await before(asyncCall('welcome_restart'), fcContext);
    await before.drain();
    await before.close();
    // The memory queue forgot the task: the same task id is accepted again and runs again.
    const after = localHandler();
    expect((await after(asyncCall('welcome_restart'), fcContext)).statusCode).toBe(202);
    await after.drain();
    expect(JSON.parse((await after.tasks.get('welcome_restart'))?.returnPayload ?? '').duplicate).toBe(true);
    expect(await sentPerTask()).toEqual({ welcome_restart: 1 });
  });

  it('a failing attempt on FC is reported failed, so that FC retries it; the retry sends nothing', async () => {
    const handler = createHandler(app(['welcome_fc_retry']), {
      env: { FC_FUNCTION_NAME: 'notify', FC_REGION: 'cn-hangzhou' },
      logger: silentLogger, // the failed attempt is logged; not in this test's output
    });
    await expect(handler(asyncCall('welcome_fc_retry'), fcContext)).rejects.toMatchObject({
      code: 'UnhandledInvocationError',
    });
    const retry = await handler(asyncCall('welcome_fc_retry', { 'X-Fc-Retry-Count': '1' }), fcContext);
    expect(JSON.parse(retry.body)).toMatchObject({ duplicate: true, attempt: 1 });
    expect(await sentPerTask()).toEqual({ welcome_fc_retry: 1 });
  });

  it('answers 400 with a code and message for a bad notification, and sends nothing', async () => {
    const handler = createHandler(app());
    const result = await handler(fcEvent('/notifications', { to: 'ada@example.com', subject: '' }), fcContext);
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toEqual({
      code: 'InvalidNotification',
      message: 'Expected `subject` to be a non-empty string, got `""`',
    });
    expect(await outbox()).toEqual([]);
  });

  it('the handler to deploy (src/index.ts) keeps its outbox and store in NOTIFICATIONS_DIR', async () => {
    process.env.NOTIFICATIONS_DIR = dir;
    const { handler } = await import('../src/index.js');
    handlers.push(handler);
    await handler(asyncCall('welcome_deployed'), fcContext);
    await handler.drain();
    expect(await sentPerTask()).toEqual({ welcome_deployed: 1 });
    const deliveries = await readFile(join(dir, 'deliveries.jsonl'), 'utf8');
    expect(JSON.parse(deliveries)).toMatchObject({ key: 'welcome_deployed' });
  });
});
