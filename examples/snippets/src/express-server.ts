import { jsonlDestination } from '@fc-async/core';
import { fcAsync, listen } from '@fc-async/express';
import express from 'express';

const app = express();
app.set('trust proxy', true);
// First, before any body parser: an async request's body is queued as it arrived.
app.use(
  fcAsync({ async: { maxAsyncRetryAttempts: 2 }, destinations: { onFailure: jsonlDestination('/tmp/failed.jsonl') } }),
);
app.use(express.json());
app.post('/transcode', async (req, res) => {
  const { type, attempt } = req.fc!; // 'Async' when called with X-Fc-Invocation-Type: Async
  res.json({ type, attempt });
});

// Port from FC_CUSTOM_LISTEN_PORT (then FC_SERVER_PORT, then 9000), on 0.0.0.0.
await listen(app, { preStopTimeoutMs: 10_000 });
