import { jsonlDestination } from '@fc-async/core';
import { createHandler, getInvocation } from '@fc-async/express';
import express from 'express';
import { transcode } from './transcode.js';

const app = express();
app.post('/transcode', express.json(), async (req, res) => {
  const { type, signal } = getInvocation(req)!; // type: 'Async' for X-Fc-Invocation-Type: Async
  res.json({ type, ...(await transcode(req.body, { signal })) }); // signal: the task was stopped or timed out
});

export const handler = createHandler(app, { destinations: { onFailure: jsonlDestination('.fc-async/failed.jsonl') } });
