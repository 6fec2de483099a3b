import { createHandler, getInvocation } from '@fc-async/fastify';
import Fastify from 'fastify';

const app = Fastify({ trustProxy: true }); // FC's gateway is the proxy: request.ip is the client
app.post('/orders', async (request, reply) => {
  const invocation = getInvocation(request); // or request.fc
  return reply.code(201).send({ id: 42, requestId: invocation?.requestId, async: invocation?.type === 'Async' });
});

export const handler = createHandler(app);
