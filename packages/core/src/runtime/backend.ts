import type { AsyncBackend, QueueDriver } from '../async/backend.js';
import type { Logger } from '../logger.js';

/**
 * `backend`, running no job before `bound` resolves. The middleware learns its app on the first
 * request (Express, Koa) or when the app is ready (Fastify); a task a persistent backend recovers
 * at start, or takes from a shared queue, comes earlier and would otherwise time out with nothing
 * to run it on. A queue of this process only (SQLite) holds such jobs until then; a shared queue
 * (BullMQ) starts taking jobs only then, so that an instance that never serves a request leaves
 * them to the others instead of holding them. A backend that does not persist tasks only runs
 * those of requests, so it is returned as it is.
 */
export function holdUntilBound(backend: AsyncBackend, bound: Promise<void>): AsyncBackend {
  if (!backend.persistent) return backend;
  return {
    name: backend.name,
    persistent: true,
    async create(context) {
      const created = await backend.create(context);
      if (created.queue.shared) startWhenBound(created.queue, bound, context.logger);
      else holdJobs(created.queue, bound);
      return created;
    },
  };
}

function holdJobs(queue: QueueDriver, bound: Promise<void>): void {
  const start = queue.start.bind(queue);
  queue.start = (process) =>
    start(async (job) => {
      await bound;
      return process(job);
    });
}

function startWhenBound(queue: QueueDriver, bound: Promise<void>, logger: Logger): void {
  const start = queue.start.bind(queue);
  const close = queue.close.bind(queue);
  let closed = false;
  /** Set once bound: `close` waits for a start under way, never for the binding itself. */
  let starting: Promise<void> | undefined;
  queue.start = (process) => {
    void bound.then(() => {
      if (closed) return;
      starting = Promise.resolve(start(process)).catch((error: unknown) =>
        logger.error('async queue failed to start taking jobs', { error }),
      );
    });
  };
  queue.close = async () => {
    closed = true;
    await starting;
    await close();
  };
}
