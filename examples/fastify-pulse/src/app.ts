import { getInvocation } from '@fc-async/fastify';
import Fastify, { type FastifyInstance } from 'fastify';

/** What this instance has seen: `maxRunning` is what the concurrency limit must bound. */
export interface WorkStats {
  running: number;
  maxRunning: number;
  done: number;
}

/**
 * `POST /work` does 20 to 50 ms of simulated work (`{ "ms": n }` picks the time), counting the
 * attempts running at once; `GET /stats` reports the counts. Nothing here knows about queues or
 * limits: fc-async (here, through the emulator) runs at most `concurrency` attempts at once.
 */
export function buildApp(): FastifyInstance {
  const stats: WorkStats = { running: 0, maxRunning: 0, done: 0 };
  const app = Fastify();

  const schema = {
    body: {
      type: 'object',
      properties: { ms: { type: 'integer', minimum: 0, maximum: 10_000 } },
      additionalProperties: false,
    },
  };
  // A bad body answers 400 { code: 'FST_ERR_VALIDATION', message }: an answer, not a failed attempt.
  app.post<{ Body: { ms?: number } }>('/work', { schema }, async (request) => {
    const ms = request.body.ms ?? 20 + Math.floor(Math.random() * 31);
    stats.running++;
    stats.maxRunning = Math.max(stats.maxRunning, stats.running);
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      stats.running--;
      stats.done++;
    }
    return { ms, attempt: getInvocation(request)?.attempt };
  });

  app.get('/stats', async () => stats);
  return app;
}

// What `fc-async dev src/app.ts` serves: the emulator wraps it with @fc-async/fastify's createHandler.
export const app = buildApp();
