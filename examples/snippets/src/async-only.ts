import { type Detector, detectInvocation } from '@fc-async/core';
import { createHandler } from '@fc-async/express';
import express from 'express';

const app = express();
app.post('/transcode', (_req, res) => {
  res.json({ done: true });
});

// Called only asynchronously: on FC, a call that reached the function with no async signal left
// (FC dropped the caller's x-fc-* headers and sent no task id) is an async one too.
const asyncOnly: Detector = (headers, env) => {
  const found = detectInvocation(headers, env);
  return found.source === 'default' && env.FC_REGION ? { ...found, type: 'Async', source: 'async-only' } : found;
};

export const handler = createHandler(app, { detect: asyncOnly });
