import { getInvocation, type Invocation } from '@fc-async/koa';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type { Delivery, DeliveryStore } from './deliveries.js';
import { InvalidNotification, type Notification, parseNotification } from './notification.js';
import type { NotificationSender } from './sender.js';

export interface AppOptions {
  sender: NotificationSender;
  deliveries: DeliveryStore;
  /**
   * The rest of the work once the notification is out (mark it sent in your database, emit an
   * event). When it throws, the attempt fails and FC retries the task: the retry runs this again,
   * but does not send again.
   */
  onDelivered?: (notification: Notification, delivery: Delivery, invocation: Invocation) => Promise<void>;
}

export function createApp({ sender, deliveries, onDelivered }: AppOptions): Koa {
  const app = new Koa({ proxy: true });
  const router = new Router();

  router.post('/notifications', async (ctx) => {
    let notification: Notification;
    try {
      notification = parseNotification(ctx.request.body);
    } catch (error) {
      if (!(error instanceof InvalidNotification)) throw error;
      // A 4xx is an answer, not a failure: FC does not retry it.
      ctx.status = 400;
      ctx.body = { code: error.code, message: error.message };
      return;
    }

    // createHandler sets the invocation on every request. Every attempt of a task carries the
    // same task id (the request id for a task the caller gave none), whichever instance runs it.
    const invocation = getInvocation(ctx)!;
    const key = invocation.taskId ?? invocation.requestId;

    // 1. Delivered by an earlier attempt (a retry, or FC running the task twice)? Then do not send.
    let delivery = await deliveries.find(key);
    const duplicate = delivery !== undefined;
    if (!delivery) {
      // 2. Send, and record it at once: nothing that can fail sits between the two.
      const { messageId } = await sender.send(notification, { idempotencyKey: key });
      delivery = { key, messageId, deliveredAt: new Date().toISOString() };
      await deliveries.record(delivery);
    }

    // 3. Whatever follows may fail: answer 5xx and FC (or the local queue) retries the task.
    try {
      await onDelivered?.(notification, delivery, invocation);
    } catch (error) {
      ctx.app.emit('error', error, ctx); // logged (createHandler's logger); the caller gets no internals
      ctx.status = 503;
      ctx.body = { code: 'AfterDeliveryFailed', message: 'Delivered; the work after it failed and is retried' };
      return;
    }
    ctx.body = { messageId: delivery.messageId, duplicate, attempt: invocation.attempt };
  });

  app.use(bodyParser());
  app.use(router.routes());
  return app;
}
