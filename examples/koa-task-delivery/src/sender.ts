import { randomUUID } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Notification } from './notification.js';

/**
 * Where notifications go: an email or SMS provider, a push service, a webhook. `idempotencyKey`
 * is the task id: pass it on when the provider takes one (an `Idempotency-Key` header), so that
 * even a send the app could not record (a crash right after it) is not delivered twice.
 */
export interface NotificationSender {
  send(notification: Notification, options: { idempotencyKey: string }): Promise<{ messageId: string }>;
}

/** What {@link outboxSender} writes: one JSON line per notification sent. */
export interface OutboxEntry extends Notification {
  messageId: string;
  idempotencyKey: string;
  sentAt: string;
}

/** The default sender: appends each notification to a JSONL outbox file, where you can count them. */
export function outboxSender(file: string): NotificationSender {
  return {
    async send(notification, { idempotencyKey }) {
      const entry: OutboxEntry = {
        ...notification,
        messageId: randomUUID(),
        idempotencyKey,
        sentAt: new Date().toISOString(),
      };
      await mkdir(dirname(file), { recursive: true });
      await appendFile(file, `${JSON.stringify(entry)}\n`);
      return { messageId: entry.messageId };
    },
  };
}
