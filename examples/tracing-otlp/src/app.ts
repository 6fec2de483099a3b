import { getInvocation } from '@fc-async/express';
import { trace } from '@opentelemetry/api';
import express from 'express';

const tracer = trace.getTracer('orders');
export const app = express();
app.use(express.json());

app.get('/orders/:id', (req, res) => {
  res.json({ id: req.params.id, requestId: getInvocation(req)?.requestId });
});

// Called with X-Fc-Invocation-Type: Async. Its spans nest under the invocation's span.
app.post('/orders/:id/invoice', async (req, res) => {
  const pages = await tracer.startActiveSpan('render invoice', async (span) => {
    span.setAttribute('order.id', req.params.id);
    await new Promise((resolve) => setTimeout(resolve, 5));
    span.end();
    return 2;
  });
  res.json({ id: req.params.id, pages });
});
