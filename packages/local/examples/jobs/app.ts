import { createHandler, getInvocation } from '@fc-async/express';
import express from 'express';

/**
 * A job API: `POST /jobs` with `{ "ms": 200 }` works for that long (and notices a stop through the
 * invocation's signal); `{ "fail": true }` answers 500 so that FC retries it and then calls
 * onFailure. Served by `fc-async dev examples/jobs/app.ts` or through `s.yaml`.
 */
const app = express();
app.use(express.json());

app.get('/hello', (req, res) => {
  res.json({ hello: 'world', function: req.headers['x-fc-function-name'] });
});

app.post('/jobs', async (req, res) => {
  const { ms = 10, fail = false } = (req.body ?? {}) as { ms?: number; fail?: boolean };
  const signal = getInvocation(req)?.signal;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (fail) {
    res.status(500).json({ error: 'the job failed' });
    return;
  }
  res.json({ done: true, ms, stopped: signal?.aborted ?? false });
});

export default app;
export const handler = createHandler(app);
