import { getInvocation } from '@fc-async/express';
import express from 'express';

/** An ordinary Express app: nothing in it knows about FC, except that it may ask. */
export const app = express();
app.set('trust proxy', true);
app.use(express.json());

app.get('/hello', (req, res) => {
  res.json({ hello: req.query.name ?? 'world', requestId: req.fc?.requestId });
});

app.post('/thumbnails', async (req, res) => {
  const invocation = getInvocation(req);
  // Long work belongs in async invocations: the caller already got its 202.
  await new Promise((resolve) => setTimeout(resolve, 50));
  res.json({ made: `${req.body.image}.thumb.png`, async: invocation?.type === 'Async', attempt: invocation?.attempt });
});
