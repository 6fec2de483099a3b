import { objectFirstLogger } from '@fc-async/core';
import { createHandler } from '@fc-async/fastify';
import Fastify from 'fastify';

const app = Fastify({ logger: true });
app.get('/orders', async () => {
  throw new Error('database down');
});

// app.log is pino: the fields first. Passed as it is, its lines would lose the requestId and the error.
export const handler = createHandler(app, { logger: objectFirstLogger(app.log) });
