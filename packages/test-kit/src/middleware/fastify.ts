import type { AddressInfo } from 'node:net';
import { fcAsync, getInvocation, listen } from '@fc-async/fastify';
import { authorized, drain } from './serve.js';
import type { AppSpec, MiddlewareApp } from './types.js';

// biome-ignore lint/suspicious/noExplicitAny: the framework module is one of two majors with different typings.
type AnyModule = any;

/**
 * Builds `spec` as a Fastify 4/5 app: the `fcAsync` plugin registered at the root, the routes in
 * an encapsulated child plugin (`fcAsync` applies to the whole app).
 */
export async function buildFastify(Fastify: AnyModule, spec: AppSpec): Promise<MiddlewareApp> {
  const app = Fastify();
  if (spec.before === 'header') {
    app.addHook('onRequest', (_request: AnyModule, reply: AnyModule, done: () => void) => {
      reply.header('x-upstream', 'kept');
      done();
    });
  }
  if (spec.before === 'body-parser') {
    app.addHook('onRequest', async (request: AnyModule) => drain(request.raw));
  }
  if (spec.before === 'auth') {
    app.addHook('onRequest', async (request: AnyModule, reply: AnyModule) => {
      if (!authorized(request.raw)) return reply.code(401).send({ code: 'Unauthorized' });
    });
  }
  if (spec.before === 'answered') {
    app.addHook('onRequest', (_request: AnyModule, reply: AnyModule, done: () => void) => {
      reply.code(503).send({ code: 'Busy' });
      done();
    });
  }
  if (spec.fcAsync) await app.register(fcAsync, spec.fcAsync);
  if (spec.onClose) app.addHook('onClose', spec.onClose);
  await app.register(async (child: AnyModule) => {
    for (const route of spec.routes) {
      child[route.method.toLowerCase()](route.path, async (request: AnyModule, reply: AnyModule) => {
        const answer = await route.handle({
          fc: request.fc,
          invocation: getInvocation(request),
          query: { ...request.query },
          headers: request.headers,
          body: request.body,
          socket: request.raw.socket,
        });
        reply.code(answer.status ?? 200);
        return answer.body;
      });
    }
  });
  const controls = spec.fcAsync ? app.fcAsync : undefined;
  return {
    app,
    controls,
    async serve() {
      await app.listen({ port: 0, host: '127.0.0.1' });
      return {
        url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
        async close() {
          await controls?.close({ timeoutMs: 50 });
          await app.close();
        },
      };
    },
    listen: (options) => listen(app, options),
  };
}
