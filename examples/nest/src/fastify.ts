import 'reflect-metadata';
import { jsonlDestination } from '@fc-async/core';
import { createHandler, type FcHandlerOptions } from '@fc-async/fastify';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './orders.js';

/** The Nest app on its Fastify platform, as an FC 3.0 (and FC 2.0) built-in runtime handler. */
export async function createFastifyHandler(options: FcHandlerOptions = {}) {
  const adapter = new FastifyAdapter({ trustProxy: true }); // request.ip is the client
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, { logger: ['error', 'warn'] });
  await app.init(); // registers the routes; Fastify is not ready yet, as createHandler() needs
  return createHandler(app.getHttpAdapter().getInstance(), options);
}

export const handler = await createFastifyHandler({
  destinations: { onFailure: jsonlDestination('.fc-async/failed.jsonl') },
});
