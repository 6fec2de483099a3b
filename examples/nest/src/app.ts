import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './orders.js';

// `fc-async dev src/app.ts`: the emulator initializes the Nest app itself and serves the Express
// app under it. FC calls the s.yaml's `handler`, which src/express.ts exports: deploy that one.
export const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
