import express from 'express';

/**
 * The app `fc-async dev` serves in bench/src/dashboard-load.ts: POST /work answers at once,
 * POST /slow after 50 ms (so that, past the emulator's concurrency, tasks pile up in its queue).
 */
const app = express();
app.get('/health', (_req, res) => {
  res.end('ok');
});
app.post('/work', (_req, res) => {
  res.json({ done: true });
});
app.post('/slow', (_req, res) => {
  setTimeout(() => res.json({ done: true }), 50);
});
export default app;
