import type { AsyncBackend } from '../async/backend.js';

/**
 * `backend`, with its jobs held until `bound` resolves, before their attempt (and its timeout)
 * starts. The middleware learns its app on the first request (Express, Koa) or when the app is
 * ready (Fastify); a task a persistent backend recovers at start, or takes from a shared queue,
 * comes earlier and would otherwise time out with nothing to run it on. A backend that does not
 * persist tasks only runs those of requests, so it is returned as it is.
 */
export function holdUntilBound(backend: AsyncBackend, bound: Promise<void>): AsyncBackend {
  if (!backend.persistent) return backend;
  return {
    name: backend.name,
    persistent: true,
    async create(context) {
      const created = await backend.create(context);
      const queue = created.queue;
      const start = queue.start.bind(queue);
      queue.start = (process) =>
        start(async (job) => {
          await bound;
          return process(job);
        });
      return created;
    },
  };
}
