import { createHandler, getInvocation } from '@fc-async/express';
import express from 'express';

const app = express();
app.set('trust proxy', true); // FC's gateway is the proxy: req.ip is the client
app.use(express.json());
app.post('/orders', (req, res) => {
  const invocation = getInvocation(req); // or req.fc
  res.status(201).json({ id: 42, requestId: invocation?.requestId, async: invocation?.type === 'Async' });
});

export const handler = createHandler(app);
