import { createFcHandler, createTracing, type FcHandlerOptions } from '@fc-async/core';
import { createHandler as expressHandler } from '@fc-async/express';
import { createHandler as fastifyHandler } from '@fc-async/fastify';
import { createHandler as koaHandler } from '@fc-async/koa';
import { context, propagation, trace } from '@opentelemetry/api';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { expressApp, fastifyApp, fc3Event, fcContext, GET, koaApp, rawApp } from './bridge-apps.js';
import type { BenchCase } from './harness.js';

/** The tracing sections' targets: traced over untraced, measured in one run. */
export const TRACING_TARGETS = {
  /** Tracing on (the default) with no OpenTelemetry SDK registered. */
  noSdk: 1.03,
  /** A real SDK (NodeTracerProvider, batch processor, a no-op exporter) registered. */
  sdk: 1.15,
};

export const TRACING_LEGEND = `\
Tracing, no SDK: the same invocations (FC 3.0 event object, GET) with tracing off
(\`tracing: { enabled: false }\`) and on (the default) while no OpenTelemetry SDK is registered:
what tracing costs a user who does not use it. "tracing off, again" is a second handler set up
exactly like the first: the gap between the two is the noise of the run. "the check alone": the
work tracing adds to each invocation when no SDK is registered, per call.`;

export const TRACING_SDK_LEGEND = `\
Tracing, SDK: a real SDK registered (NodeTracerProvider.register(): async-local context, W3C
propagators; a batch span processor with an exporter that drops spans). Tracing off against
on, where each invocation records its SERVER span with all its attributes (and the route).
"one bare SDK span": the untraced handler inside one span without attributes, the least any
tracing of an invocation costs with this SDK. "the SDK alone": one span started and ended with no
invocation around it, bare and with twenty attributes (as many as an invocation's SERVER span).`;

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/**
 * Handlers for one app: all on the same app instance where the framework allows it (a second
 * instance alone can differ by 10 % or more), a fresh one for Fastify, which decorates its app.
 */
const APPS: [string, () => (options: FcHandlerOptions) => Handler][] = [
  ['raw', () => (options) => createFcHandler(rawApp, options) as Handler],
  [
    'express',
    () => {
      const app = expressApp();
      return (options) => expressHandler(app, options) as Handler;
    },
  ],
  [
    'koa',
    () => {
      const app = koaApp();
      return (options) => koaHandler(app, options) as Handler;
    },
  ],
  ['fastify', () => (options) => fastifyHandler(fastifyApp(), options) as Handler],
];

/** A reference row: the untraced handler inside one SDK span without attributes, the SDK's floor. */
function bareSpan(off: Handler): Handler {
  const tracer = trace.getTracer('bench');
  return (event, ctx) => tracer.startActiveSpan('GET', (span) => off(event, ctx).finally(() => span.end()));
}

function cases(label: string, target: number, check: () => Promise<void>, sdkFloor = false): BenchCase[] {
  const event = fc3Event(GET);
  const out: BenchCase[] = [];
  for (const [app, make] of APPS) {
    const wrap = make();
    // V8 specialises optimised code to a closure's context while a function has made only one
    // closure: the first handler made would run faster than any made after it, whatever its
    // options. A discarded first handler puts every measured row on the same footing.
    wrap({ tracing: { enabled: false } });
    const off = wrap({ tracing: { enabled: false } });
    const on = wrap({});
    const group = `${app} GET`;
    out.push({ group, name: 'tracing off', role: 'peer', fn: () => off(event, fcContext) });
    if (sdkFloor) {
      const bare = bareSpan(off);
      out.push({ group, name: 'one bare SDK span', role: 'peer', fn: () => bare(event, fcContext) });
    } else {
      const again = wrap({ tracing: { enabled: false } });
      out.push({ group, name: 'tracing off, again', role: 'peer', fn: () => again(event, fcContext) });
    }
    out.push({
      group,
      name: label,
      baseline: 'tracing off',
      target,
      fn: () => on(event, fcContext),
      check: async () => {
        const result = (await on(event, fcContext)) as { statusCode: number };
        if (result.statusCode !== 200) throw new Error(`${group} ${label}: expected 200, got ${result.statusCode}`);
        await check();
      },
    });
  }
  return out;
}

/** Tracing on and off with no SDK registered. */
export function tracingCases(): BenchCase[] {
  if (createTracing().isEnabled()) {
    throw new Error('tracing, no SDK: an OpenTelemetry SDK is registered; this section must run without one');
  }
  const tracing = createTracing();
  const request = { method: 'GET', url: '/hello', headers: {} };
  return [
    ...cases('tracing on, no SDK', TRACING_TARGETS.noSdk, async () => {
      if (createTracing().isEnabled()) throw new Error('tracing, no SDK: an SDK got registered');
    }),
    // What "tracing on" adds per invocation without an SDK, alone: finding that no SDK is there.
    {
      group: 'the check alone',
      name: 'startInvocationSpan(), no SDK',
      fn: () => tracing.startInvocationSpan(request),
      check: () => {
        if (tracing.startInvocationSpan(request) !== undefined) throw new Error('the check started a span');
      },
    },
  ];
}

let sdk: NodeTracerProvider | undefined;
let exported = 0;

/** Drops spans, counting them (the check proves spans are recorded). */
const dropExporter: SpanExporter = {
  export(spans, done) {
    exported += spans.length;
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
  forceFlush: () => Promise.resolve(),
};

/** Registers a real SDK for the section (undone by {@link tracingSdkTeardown}). */
export function tracingSdkCases(): BenchCase[] {
  exported = 0;
  sdk = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropExporter)] });
  sdk.register();
  let seen = 0;
  return [
    ...cases(
      'traced, SDK',
      TRACING_TARGETS.sdk,
      async () => {
        await sdk?.forceFlush();
        if (exported <= seen) throw new Error('tracing, SDK: the traced invocation recorded no span');
        seen = exported;
      },
      true,
    ),
    ...sdkAlone(),
  ];
}

/** Twenty attribute names, as many as an invocation's SERVER span carries. */
const ATTRIBUTES = Array.from({ length: 20 }, (_, i) => `bench.attribute_${i}`);

/**
 * What the SDK alone takes per span, with no invocation around it: the part of every traced
 * row that no instrumentation can save. Compare it with 15 % of each app's "tracing off".
 */
function sdkAlone(): BenchCase[] {
  const tracer = trace.getTracer('bench');
  const group = 'the SDK alone';
  return [
    { group, name: 'startSpan() + end()', role: 'peer', fn: () => tracer.startSpan('GET').end() },
    {
      group,
      name: 'startSpan(), 20 setAttribute(), end()',
      role: 'peer',
      fn: () => {
        const span = tracer.startSpan('GET');
        for (const name of ATTRIBUTES) span.setAttribute(name, 'value');
        span.end();
      },
    },
  ];
}

/** Unregisters the section's SDK. */
export async function tracingSdkTeardown(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
  trace.disable();
  context.disable();
  propagation.disable();
}
