import { createFcHandler, type FcHandler, type FcHandlerOptions } from '@fc-async/core';
import { createHandler as createExpressHandler } from '@fc-async/express';
import { createHandler as createFastifyHandler } from '@fc-async/fastify';
import { createHandler as createKoaHandler } from '@fc-async/koa';
import Router from '@koa/router';
import express4 from 'express4';
import express5 from 'express5';
import fastify4 from 'fastify4';
import fastify5 from 'fastify5';
import koa2 from 'koa2';
import koa3 from 'koa3';
import { expressApp, fastifyApp, type Gates, koaApp, rawApp } from './apps.js';
import {
  fc2Call,
  fc3Event,
  fcContext,
  fixtureRequestId,
  fromFc3Result,
  type Reply,
  type RequestSpec,
} from './fixtures.js';

/** One way to build the conformance app and wrap it. */
export interface Target {
  name: string;
  create(options: FcHandlerOptions, gates: Gates): FcHandler;
}

export const targets: Target[] = [
  { name: 'raw node handler', create: (o, g) => createFcHandler(rawApp(g), o) },
  { name: 'express 4', create: (o, g) => createExpressHandler(expressApp(express4, g), o) },
  { name: 'express 5', create: (o, g) => createExpressHandler(expressApp(express5, g), o) },
  { name: 'koa 2', create: (o, g) => createKoaHandler(koaApp(koa2, Router, g), o) },
  { name: 'koa 3', create: (o, g) => createKoaHandler(koaApp(koa3, Router, g), o) },
  { name: 'fastify 4', create: (o, g) => createFastifyHandler(fastifyApp(fastify4, g), o) },
  { name: 'fastify 5', create: (o, g) => createFastifyHandler(fastifyApp(fastify5, g), o) },
];

/** The runtime signatures: FC 3.0, FC 2.0 with a streamed body, FC 2.0 with `req.body` set. */
export type Signature = 'fc3' | 'fc2-stream' | 'fc2-body';
export const signatures: Signature[] = ['fc3', 'fc2-stream', 'fc2-body'];

/** Invokes `handler` the way the FC runtime of `signature` would. */
export async function invoke(handler: FcHandler, signature: Signature, spec: RequestSpec): Promise<Reply> {
  const requestId = spec.requestId ?? fixtureRequestId();
  const context = fcContext(requestId);
  if (signature === 'fc3') {
    return fromFc3Result(await handler(fc3Event({ ...spec, requestId }), context));
  }
  const { req, resp, done } = fc2Call(spec, signature === 'fc2-body');
  await handler(req, resp, context);
  return done;
}
