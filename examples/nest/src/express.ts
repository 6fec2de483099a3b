import 'reflect-metadata';
import { jsonlDestination } from '@fc-async/core';
import { createHandler, type FcHandlerOptions } from '@fc-async/express';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './orders.js';

/** The Nest app on its Express platform, as an FC 3.0 (and FC 2.0) built-in runtime handler. */
export async function createExpressHandler(options: FcHandlerOptions = {}) {
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: ['error', 'warn'] });
  app.set('trust proxy', true); // FC's gateway is the proxy: req.ip is the client
  await app.init(); // registers Nest's body parsers and routes on the Express app; no listen()
  return createHandler(app.getHttpAdapter().getInstance(), options);
}

// The s.yaml's handler: `express.handler`. FC calls it; nothing listens.
export const handler = await createExpressHandler({
  destinations: { onFailure: jsonlDestination('.fc-async/failed.jsonl') },
});
