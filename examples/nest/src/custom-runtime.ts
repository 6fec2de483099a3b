import 'reflect-metadata';
import type { FcListenOptions, FcRuntimeOptions } from '@fc-async/core';
import * as fcExpress from '@fc-async/express';
import * as fcFastify from '@fc-async/fastify';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './orders.js';

/** The Nest app on Express as the HTTP server of an FC custom runtime (or custom container). */
export async function serveExpress(runtime: FcRuntimeOptions = {}, server: FcListenOptions = {}) {
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: ['error', 'warn'] });
  app.set('trust proxy', true);
  // Before init(): the middleware goes ahead of the body parsers and routes that init() registers.
  app.use(fcExpress.fcAsync(runtime));
  await app.init();
  return fcExpress.listen(app.getHttpAdapter().getInstance(), server); // not app.listen(): see docs/nestjs.md
}

/** The Nest app on Fastify as the HTTP server of an FC custom runtime (or custom container). */
export async function serveFastify(runtime: FcRuntimeOptions = {}, server: FcListenOptions = {}) {
  const adapter = new FastifyAdapter({ trustProxy: true });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, { logger: ['error', 'warn'] });
  await app.register(fcFastify.fcAsync, runtime); // before init(), as Fastify takes plugins before it boots
  await app.init();
  return fcFastify.listen(app.getHttpAdapter().getInstance(), server);
}
