import express from 'express';

/** The app `fc-async dev` serves in the emulator benchmark: each async task runs POST /work. */
const app = express();
app.get('/health', (_req, res) => {
  res.end('ok');
});
app.post('/work', express.json(), (req, res) => {
  res.json({ done: true, job: (req.body as { job?: string }).job });
});
export default app;
