import { jsonlDestination } from '@fc-async/core';
import { fcAsync, listen } from '@fc-async/fastify';
import Fastify from 'fastify';

const app = Fastify({ trustProxy: true });
// Applies to the whole app, whatever plugin the routes live in.
await app.register(fcAsync, {
  async: { maxAsyncRetryAttempts: 2 },
  destinations: { onFailure: jsonlDestination('/tmp/failed.jsonl') },
});
app.post('/transcode', async (request) => {
  const { type, attempt } = request.fc!; // 'Async' when called with X-Fc-Invocation-Type: Async
  return { type, attempt };
});

// Port from FC_CUSTOM_LISTEN_PORT (then FC_SERVER_PORT, then 9000), on 0.0.0.0; app.close() on SIGTERM.
await listen(app, { preStopTimeoutMs: 10_000 });
