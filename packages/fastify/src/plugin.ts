import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createFcRuntime,
  type FcAsyncControls,
  FcAsyncError,
  type FcRuntimeOptions,
  getInvocation,
  isAnsweredInFront,
  type Logger,
  logAppError,
  thrownError,
  writeBridgeResponse,
} from '@fc-async/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { hideDefaultErrors, seeError } from './errors.js';
import { fastifyRoute, recordFastifyRoutes } from './route.js';

/** The servers of the apps that have an `fcAsync`: every plugin scope of one app shares its server. */
const served = new WeakSet<object>();

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The async controls of the registered `fcAsync` plugin: `mode`, `tasks`, `engine`, `drain()`,
     * `close()`. Undefined in an app that did not register the plugin (one wrapped by
     * `createHandler(app)`, whose controls are the handler's own): check it before use.
     *
     * @example
     * ```ts
     * const controls = app.fcAsync;
     * if (controls === undefined) throw new Error('register fcAsync first');
     * await controls.drain();
     * ```
     */
    readonly fcAsync?: FcAsyncControls | undefined;
  }
}

/**
 * fc-async for a Fastify 4/5 app run as an FC custom runtime or custom container. It applies
 * to the whole app (not encapsulated), from an `onRequest` hook. Every request gets its
 * invocation context (`request.fc`, `getInvocation(request)`) from FC's common headers. Async
 * requests: in local mode answered 202 and queued, then replayed through the same app; on FC
 * (platform mode) run through the app, the destination hooks called, and `x-fc-status: 404`
 * set when the invocation failed. `app.fcAsync` holds `tasks`, `drain()` and `close()` (typed
 * optional: an app that never registered the plugin has none);
 * `app.close()` closes it. An error that reaches Fastify's default error handler answers a
 * generic 500 (that handler would send the error's message) and goes to `options.logger`; 4xx
 * errors keep Fastify's answer, and an error handler the app sets is left as it is. One per app:
 * a second `fcAsync` anywhere in the same app is refused with an `FcAsyncError`. Register it before
 * `app.ready()` and `app.listen()`: Fastify refuses a `register` on an app already ready.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { fcAsync, listen } from '@fc-async/fastify';
 *
 * const app = Fastify();
 * await app.register(fcAsync, { async: { maxAsyncRetryAttempts: 2 } });
 * app.post('/transcode', async (request) => ({ attempt: request.fc?.attempt }));
 * await listen(app);
 * ```
 */
export const fcAsync: FastifyPluginAsync<FcRuntimeOptions> = Object.assign(
  async function fcAsync(instance: FastifyInstance, options: FcRuntimeOptions) {
    // Fastify's own register options (`prefix`, `logLevel`…) do not apply to this plugin, which
    // skips encapsulation: they are left out rather than refused as unknown.
    const {
      prefix: _prefix,
      logLevel: _logLevel,
      logSerializers: _logSerializers,
      ...own
    } = options as FcRuntimeOptions & Record<'prefix' | 'logLevel' | 'logSerializers', unknown>;
    // Checked before anything is created: a refused plugin leaves no engine or pre-stop hook behind.
    if (served.has(instance.server)) {
      throw new FcAsyncError(
        'FcAsyncAlreadyRegistered',
        'fcAsync is already registered in this Fastify app: register one fcAsync per app, on the root instance (it applies to every plugin)',
      );
    }
    // An encapsulated instance (a plugin's own, not wrapped in fastify-plugin) inherits from its parent:
    // there fcAsync would cover that plugin's routes only, and `app.fcAsync` would be undefined.
    if (Object.getPrototypeOf(instance) !== Object.prototype) {
      throw new FcAsyncError(
        'FcAsyncNotOnRoot',
        'fcAsync is registered inside an encapsulated plugin: register it on the root instance (it applies to every plugin), or wrap the plugin that registers it in fastify-plugin',
      );
    }
    const runtime = createFcRuntime(own);
    const logger = runtime.logger;
    const target = { app: instance.server, listener: () => instance.routing.bind(instance), routeOf: fastifyRoute };
    // Bound once every route is in: a task a persistent backend recovers replays from then on.
    instance.addHook('onReady', async () => runtime.bind(target));
    const controls: FcAsyncControls = {
      mode: runtime.mode,
      tasks: runtime.tasks,
      engine: runtime.engine,
      drain: runtime.drain,
      close: runtime.close,
    };
    instance.decorate('fcAsync', controls);
    served.add(instance.server);
    if (!instance.hasRequestDecorator('fc')) {
      instance.decorateRequest('fc', {
        getter(this: FastifyRequest) {
          return getInvocation(this.raw);
        },
      } as never);
    }
    if (options.tracing?.enabled !== false) recordFastifyRoutes(instance);
    // A callback hook, so that the rest of the request runs inside the invocation's span.
    instance.addHook('onRequest', function fcAsyncOnRequest(request, reply, done) {
      // Replays go through the router again, and with it through `rewriteUrl`: keep the URL as sent.
      const url = request.originalUrl;
      runtime
        .handle(request.raw, url === request.raw.url ? target : { ...target, url }, reply.raw)
        .then((answer) => {
          if (answer === undefined) {
            runtime.proceed(request.raw, done);
            return;
          }
          // Ended before this hook (Fastify itself skips hooks once `reply.sent`): the route must not run.
          if (isAnsweredInFront(answer)) {
            reply.hijack();
            return;
          }
          // A hijacked reply skips Fastify's own header writing: keep what earlier hooks set,
          // except a value Node refuses (the answer, maybe a 202 for a queued task, must go out).
          for (const [name, value] of Object.entries(reply.getHeaders())) {
            if (value === undefined) continue;
            try {
              reply.raw.setHeader(name, value);
            } catch (error) {
              logger.warn('a response header set before fc-async answered was left out', { name, error });
            }
          }
          reply.hijack();
          writeBridgeResponse(reply.raw, answer, request.method);
        }, done)
        .catch((error: unknown) => {
          logger.error('fc-async could not write its answer', { error });
          reply.raw.destroy();
        });
    });
    // Fastify's default error handler would send the error's message; an app's own handler stays
    // in charge (a setErrorHandler of ours would make the app's later one warn, or throw with
    // `allowErrorHandlerOverride: false`). onError hooks run once, before any error handler.
    instance.addHook('onError', function fcAsyncOnError(request, reply, error, done) {
      if (reply.raw.headersSent) {
        keepAppErrorOnDestroy(request.raw, reply.raw, error, logger);
        done();
        return;
      }
      const seen = seeError(reply, error);
      hideDefaultErrors(request.raw, reply.raw, logger, () => seen);
      done();
    });
    instance.addHook('onClose', () => runtime.close());
    closeTasksFirst(instance, runtime.close, logger);
  },
  { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'fc-async' },
);

/** Responses whose app failed after the head went out (see keepAppErrorOnDestroy). */
const lateErrors = new WeakSet<ServerResponse>();

/**
 * An error once the response's head went out: no error handler can answer it. Fastify's default
 * handler tries, and destroys the response with the `ERR_HTTP_HEADERS_SENT` its answer raises; an
 * async task would then record that in place of the app's error. That destroy is given the app's
 * error instead. Not destroyed here: an app's own error handler may still end the body it streams.
 */
function keepAppErrorOnDestroy(req: IncomingMessage, res: ServerResponse, error: unknown, logger: Logger): void {
  // The first error is the app's: the ERR_HTTP_HEADERS_SENT of answering it comes through onError again.
  if (lateErrors.has(res)) return;
  lateErrors.add(res);
  const destroy = res.destroy;
  res.destroy = function destroyWithAppError(this: ServerResponse, cause?: Error) {
    res.destroy = destroy;
    if ((cause as { code?: unknown } | undefined)?.code !== 'ERR_HTTP_HEADERS_SENT') return destroy.call(this, cause);
    // Fastify's last resort: logged as the errors it answers are (see hideDefaultErrors).
    const failure = thrownError(error);
    logAppError(logger, 'fastify', failure, getInvocation(req));
    return destroy.call(this, failure);
  } as typeof res.destroy;
}

/**
 * `app.close()` closes the async runtime first, while the app still routes: Fastify answers 503 to
 * anything routed once its close began (before any onClose hook runs), so tasks still queued
 * were replayed into it, retried and failed. The onClose hook above stays for a close that
 * skips this one (an encapsulated instance's own).
 */
function closeTasksFirst(instance: FastifyInstance, closeTasks: () => Promise<void>, logger: Logger): void {
  const close = instance.close as (this: FastifyInstance) => PromiseLike<unknown>;
  const closeAfterTasks = function (this: FastifyInstance, callback?: (error?: Error) => void) {
    const closed = closeTasks()
      .catch((error: unknown) => logger.error('fc-async could not finish its tasks before the app closed', { error }))
      .then(() => close.call(this));
    if (typeof callback !== 'function') return closed;
    closed.then(() => callback(), callback);
    return this;
  };
  instance.close = closeAfterTasks as FastifyInstance['close'];
}
