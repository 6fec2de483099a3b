import { getInvocation } from '@fc-async/express';
import express from 'express';

/** What the orders app needs of a payment service. */
export interface Payments {
  charge(order: unknown, signal: AbortSignal): Promise<string>;
}

/** An Express app that charges an order: slow, and down at times, so it is called asynchronously. */
export function ordersApp(payments: Payments): express.Express {
  const app = express();
  app.post('/orders', express.json(), async (req, res) => {
    const { attempt, signal } = getInvocation(req)!;
    const receipt = await payments.charge(req.body, signal);
    res.json({ receipt, attempt });
  });
  return app;
}
