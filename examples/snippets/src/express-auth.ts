import { fcAsync, isMiddlewareReplay, listen } from '@fc-async/express';
import express from 'express';

const validToken = (authorization: string | undefined) => authorization === `Bearer ${process.env.API_TOKEN}`;

const app = express();
app.use((req, res, next) => {
  // fcAsync() accepted this request only after this check passed; its replay has no credentials.
  if (isMiddlewareReplay(req)) return next();
  if (!validToken(req.headers.authorization)) return res.status(401).json({ code: 'Unauthorized' });
  next();
});
app.use(fcAsync());
app.post('/admin/reindex', (_req, res) => {
  res.json({ started: true });
});

await listen(app);
