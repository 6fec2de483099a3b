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
  // Not app.listen(): fc-async's answers FC's /initialize and /pre-stop. app.close() runs Nest's
  // shutdown hooks on FC's pre-stop and on SIGTERM, once the async tasks are done.
  const fc = await fcExpress.listen(app.getHttpAdapter().getInstance(), { onPreStop: () => app.close(), ...server });
  return { app, server: fc };
}

/** The Nest app on Fastify as the HTTP server of an FC custom runtime (or custom container). */
export async function serveFastify(runtime: FcRuntimeOptions = {}, server: FcListenOptions = {}) {
  const adapter = new FastifyAdapter({ trustProxy: true });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, { logger: ['error', 'warn'] });
  await app.register(fcFastify.fcAsync, runtime); // before init(), as Fastify takes plugins before it boots
  await app.init();
  const fc = await fcFastify.listen(app.getHttpAdapter().getInstance(), { onPreStop: () => app.close(), ...server });
  return { app, server: fc };
}
