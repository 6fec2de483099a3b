import type { ServerResponse } from 'node:http';
import { type Invocation, type Logger, logAppError, thrownError } from '@fc-async/core';

/** What fc-async uses of a Koa app's `error` events (Koa apps are EventEmitters). */
export interface KoaErrorEmitter {
  on(event: 'error', listener: (error: unknown) => void): unknown;
  listeners?(event: 'error'): unknown[];
  removeListener?(event: 'error', listener: (error: unknown) => void): unknown;
  /** Koa's own listener, which `callback()` adds to an app without one: console.error with the stack. */
  onerror?: (error: unknown) => void;
}

/**
 * Koa answers nothing to a middleware that throws (or rejects with) `null` or `undefined`: its
 * `ctx.onerror` returns on such an error, so the request hangs until its timeout (an async attempt
 * used its whole `timeoutSeconds`). fc-async puts this first in the app's middleware when it makes
 * the app's listener: such a throw becomes an `Error`, answered 500 and logged as any other.
 */
export function answerNullThrows(app: { middleware?: unknown; context?: unknown }): void {
  const list = app.middleware;
  if (Array.isArray(list) && list[0] !== fcAsyncNullThrows) list.unshift(fcAsyncNullThrows);
  closeOnLateErrors(app.context);
}

async function fcAsyncNullThrows(_ctx: unknown, next: () => Promise<unknown>): Promise<void> {
  try {
    await next();
  } catch (error) {
    throw error ?? new Error(`The app threw ${String(error)}`);
  }
}

/** The `onerror` of app contexts fc-async wrapped (see closeOnLateErrors). */
const lateErrorHandlers = new WeakSet<object>();

/**
 * Koa answers nothing to an error that comes once the response's head went out (a middleware
 * that wrote or flushed the head, then threw; a streamed body that failed midway): its
 * `ctx.onerror` emits the error and returns, leaving the response open, so the invocation hung
 * until its timeout (an async attempt recorded a timeout, not the app's error). Wrapped once per
 * app, on `app.context` (every request's `ctx` inherits it; an `onerror` the app sets there before
 * is wrapped, one set after replaces this): once Koa has handled such an error, the response is
 * destroyed with it, as Express's final handler does, so the invocation fails at once with that
 * error, logged once. A thrown value that is no `Error` becomes one first, so that Koa emits the
 * same error the response is destroyed with.
 */
function closeOnLateErrors(context: unknown): void {
  if (typeof context !== 'object' || context === null) return;
  const target = context as { onerror?: unknown };
  const onerror = target.onerror;
  if (typeof onerror !== 'function' || lateErrorHandlers.has(onerror)) return;
  const fcAsyncLateError = function (this: { res?: ServerResponse } | undefined, error: unknown): unknown {
    const res = this?.res;
    const late = error !== null && error !== undefined && res?.headersSent === true && !res.writableEnded;
    const failure = late ? thrownError(error) : error;
    const result = onerror.call(this, failure);
    if (late && !res.writableEnded && !res.destroyed) res.destroy(failure as Error);
    return result;
  };
  lateErrorHandlers.add(fcAsyncLateError);
  target.onerror = fcAsyncLateError;
}

/** Per app, the logger its `error` events go to: the last `createHandler`'s, else its `fcAsync()`'s. */
const appLoggers = new WeakMap<object, { logger: () => Logger; byHandler: boolean }>();

/**
 * Sends the app's `error` events to `logger()` (the last `createHandler`'s given for the app, else
 * the `fcAsync()` middleware's: `byHandler`) when the app has no listener of its own: none, or
 * only Koa's default one (taken out, so that the stack is not printed twice). Koa still answers
 * the error itself (`Internal Server Error` for an unexposed one); a 404 or an exposed error is no
 * failure and is not logged, as Koa's own listener does.
 */
export function logKoaErrors(app: KoaErrorEmitter, logger: () => Logger, byHandler: boolean): void {
  if (typeof app.on !== 'function') return;
  const current = appLoggers.get(app);
  // A handler's wins over a middleware's (which registers at its first request, whenever made);
  // among handlers the last one made: a test suite's handler per test over one app.
  if (!current || byHandler || !current.byHandler) appLoggers.set(app, { logger, byHandler });
  if (current) return;
  const listeners = app.listeners?.('error') ?? [];
  if (listeners.some((listener) => listener !== app.onerror)) {
    appLoggers.delete(app); // the app logs its errors itself
    return;
  }
  if (listeners.length > 0 && app.onerror) app.removeListener?.('error', app.onerror);
  app.on('error', function fcAsyncKoaErrorLog(error: unknown, ctx?: { fc?: Invocation }) {
    const e = error as { status?: number; expose?: boolean } | undefined;
    // As Koa's own listener, which this one stands for, it leaves the errors to a listener the app
    // added since (Koa adds its own only to an app that has none). Not to `app.silent`, which keeps
    // Koa's printing off stderr: the logger given is where the app's errors are meant to go.
    if (e?.status === 404 || e?.expose === true) return;
    if (app.listeners?.('error').some((l) => l !== fcAsyncKoaErrorLog && l !== app.onerror)) return;
    const logger = appLoggers.get(app)?.logger();
    if (logger) logAppError(logger, 'koa', error, ctx?.fc);
  });
}
