import { isDeepStrictEqual } from 'node:util';
import { configure as serverlessExpress } from '@codegenie/serverless-express';
import awsLambdaFastify from '@fastify/aws-lambda';
import { createFcHandler } from '@fc-async/core';
import { createHandler as expressHandler } from '@fc-async/express';
import { createHandler as fastifyHandler } from '@fc-async/fastify';
import { createHandler as koaHandler } from '@fc-async/koa';
import serverless from 'serverless-http';
import {
  apiGatewayV2Event,
  type BenchRequest,
  expectedBody,
  expressApp,
  fastifyApp,
  fc3Event,
  fcContext,
  GET,
  koaApp,
  lambdaContext,
  POST,
  rawApp,
} from './bridge-apps.js';
import type { BenchCase } from './harness.js';

/** The bridge section's targets, as ratios measured in one run. */
export const TARGETS = {
  /** fc-async on the raw Node handler (GET: the bridge overhead), against serverless-http on the same. */
  rawVsServerlessHttp: 1 / 3,
  /** fc-async on a framework app, against the fastest peer library on the same app. */
  frameworkVsBestPeer: 0.85,
};

/** Explains the rows, printed above the table and repeated in docs/performance.md. */
export const BRIDGE_LEGEND = `\
Bridge: one invocation = calling the library's handler with an event and awaiting its result
(event in, app runs, platform result out), one at a time, same apps and requests; each app's rows
(fc-async's and the peers') in a child process of their own, as a deployed function serves one app.
fc-async gets the FC 3.0 HTTP trigger event; the peers get the same request as an API Gateway
v2 (HTTP API) event object. "event object": fc-async gets the event already parsed, as the
peers do (Lambda's runtime parses the JSON before calling them): the targets compare this row.
"event Buffer": the JSON bytes FC really passes; the time includes JSON.parse of the event.
raw = a plain Node (req, res) listener. GET sets content-type and ends '{"ok":true}', so its
time per invocation is the bridge overhead: event to IncomingMessage and ServerResponse, the
listener's two calls, response collected into the platform's result. POST also reads the body
from the request stream, JSON.parses it and echoes it.
µs/op: median over rounds of process CPU time per invocation.`;

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

interface Library {
  name: string;
  role: 'ours' | 'peer';
  /** The event this library is fed for a request. */
  event: (request: BenchRequest) => unknown;
  context: unknown;
}

const FC_OBJECT: Library = { name: 'fc-async (event object)', role: 'ours', event: fc3Event, context: fcContext };
const FC_BUFFER: Library = {
  name: 'fc-async (event Buffer)',
  role: 'ours',
  event: (request) => Buffer.from(JSON.stringify(fc3Event(request))),
  context: fcContext,
};
const lambda = (name: string): Library => ({ name, role: 'peer', event: apiGatewayV2Event, context: lambdaContext });

const quiet = { logSettings: { level: 'error' } };

/** For each app: how each library wraps it. A fresh app per library, as adapters decorate apps. */
const TARGET_APPS: { app: string; libraries: [Library, () => Handler][] }[] = [
  {
    app: 'raw',
    libraries: [
      [FC_OBJECT, () => createFcHandler(rawApp) as Handler],
      [FC_BUFFER, () => createFcHandler(rawApp) as Handler],
      [lambda('serverless-http'), () => serverless(rawApp) as Handler],
      [lambda('@codegenie/serverless-express'), () => serverlessExpress({ app: rawApp, ...quiet }) as Handler],
    ],
  },
  {
    app: 'express',
    libraries: [
      [FC_OBJECT, () => expressHandler(expressApp()) as Handler],
      [FC_BUFFER, () => expressHandler(expressApp()) as Handler],
      [lambda('serverless-http'), () => serverless(expressApp()) as Handler],
      [lambda('@codegenie/serverless-express'), () => serverlessExpress({ app: expressApp(), ...quiet }) as Handler],
    ],
  },
  {
    app: 'koa',
    libraries: [
      [FC_OBJECT, () => koaHandler(koaApp()) as Handler],
      [FC_BUFFER, () => koaHandler(koaApp()) as Handler],
      [lambda('serverless-http'), () => serverless(koaApp()) as Handler],
      [
        lambda('@codegenie/serverless-express'),
        () => serverlessExpress({ app: koaApp() as never, ...quiet }) as Handler,
      ],
    ],
  },
  {
    app: 'fastify',
    libraries: [
      [FC_OBJECT, () => fastifyHandler(fastifyApp()) as Handler],
      [FC_BUFFER, () => fastifyHandler(fastifyApp()) as Handler],
      [lambda('@fastify/aws-lambda'), () => awsLambdaFastify(fastifyApp()) as Handler],
      // serverless-http drives a Fastify instance through `inject()`.
      [lambda('serverless-http'), () => serverless(fastifyApp() as never) as Handler],
    ],
  },
];

interface PlatformResult {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
  isBase64Encoded: boolean;
}

/** Throws unless the result is the app's 200 JSON answer to the request. */
function checkResult(label: string, request: BenchRequest, value: unknown): void {
  const result = value as PlatformResult;
  const body = Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8').toString('utf8');
  const type = String(result.headers['content-type'] ?? result.headers['Content-Type'] ?? '');
  if (result.statusCode !== 200 || !type.startsWith('application/json')) {
    throw new Error(`${label}: expected 200 application/json, got ${result.statusCode} ${type} ${body}`);
  }
  if (!isDeepStrictEqual(JSON.parse(body), expectedBody(request))) {
    throw new Error(`${label}: unexpected body ${body}`);
  }
}

/**
 * The bridge section: each app (raw, Express, Koa, Fastify) × request (GET, POST JSON) ×
 * library, as harness cases grouped by app and request.
 */
export function bridgeCases(): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const { app, libraries } of TARGET_APPS) {
    for (const request of [GET, POST]) {
      const group = `${app} ${request.method}`;
      for (const [library, wrap] of libraries) {
        const handler = wrap();
        const event = library.event(request);
        const { context } = library;
        // The raw target is on the GET row: its handler does next to nothing, so its time is the
        // bridge's overhead. The raw POST handler also parses and serialises JSON.
        const target =
          library !== FC_OBJECT
            ? undefined
            : app !== 'raw'
              ? TARGETS.frameworkVsBestPeer
              : request === GET
                ? TARGETS.rawVsServerlessHttp
                : undefined;
        cases.push({
          group,
          name: library.name,
          role: library.role,
          baseline: library.role === 'ours' && app === 'raw' ? 'serverless-http' : undefined,
          target,
          fn: () => handler(event, context),
          check: async () => checkResult(`${group} ${library.name}`, request, await handler(event, context)),
        });
      }
    }
  }
  return cases;
}
