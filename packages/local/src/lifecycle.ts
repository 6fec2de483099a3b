import { FcAsyncError, newRequestId, thrownText } from '@fc-async/core';
import { loadHook, thrownAt } from './entry.js';
import { buildContext, type FunctionIdentity } from './event.js';
import { callHandler, type FunctionLog, isFunctionTimeout } from './listeners.js';
import type { EmulatorLog } from './log.js';
import type { FunctionSpec, LifecycleHook } from './spec.js';

/** The longest a `preStop` runs on shutdown, whatever its timeout says (as for a custom runtime's `GET /pre-stop`). */
const PRE_STOP_MAX_S = 30;
/** How long an initializer may run before one notice says it still does (as an entry's load, see function.ts). */
const STILL_RUNNING_MS = 5000;

/**
 * A Node.js function's lifecycle hooks, loaded: `initialize()` runs the initializer, `preStop()`
 * the pre-stop hook (each a no-op when the s.yaml configures none).
 */
export interface LoadedHooks {
  initialize(): Promise<void>;
  preStop(): Promise<void>;
}

/**
 * Loads the hooks the s.yaml configures for `spec` (see `FunctionSpec.lifecycle`) from its code:
 * a hook in the entry's file is the entry's module instance (`instance`), one in another file the
 * module the entry's imports share. Each is called as FC's Node.js runtime calls it, with a
 * `context` of its own (a request id for the hook's call, `context.logger`), and may return a
 * promise or call back (`(context, callback)`). Throws `EntryNotServable` for a hook the module does
 * not export as a function.
 *
 * @example
 * ```ts
 * const hooks = await loadLifecycleHooks(spec, identity, log, functionLog, 'index@c-1');
 * await hooks.initialize(); // before the function is served
 * await hooks.preStop(); // on shutdown, once its tasks have drained
 * ```
 */
export async function loadLifecycleHooks(
  spec: FunctionSpec,
  identity: FunctionIdentity,
  log: EmulatorLog,
  functionLog: FunctionLog,
  instance: string,
): Promise<LoadedHooks> {
  const { initializer, preStop } = spec.lifecycle ?? {};
  const load = (hook: LifecycleHook | undefined, what: string) =>
    hook ? loadHook(hook, what, spec.file, instance) : undefined;
  const initialize = await load(initializer, 'initializer');
  const stop = await load(preStop, 'preStop');
  const call = async (fn: (...args: unknown[]) => unknown, timeoutS: number) => {
    const requestId = newRequestId();
    const context = buildContext(identity, requestId, functionLog.forRequest(requestId));
    const started = Date.now();
    await callHandler(fn, [context], timeoutS * 1000);
    return { requestId, durationMs: Date.now() - started };
  };
  return {
    async initialize() {
      if (!initialize || !initializer) return;
      // One with a long timeout (a database that never answers) would leave the emulator silent, its ports not open.
      const timer = setTimeout(
        () =>
          log.notice(
            `${spec.name}: its initializer ${initializer.handler} still runs after ${STILL_RUNNING_MS / 1000} s (its timeout: ${initializer.timeout} s); the emulator's ports open once every initializer has finished`,
          ),
        STILL_RUNNING_MS,
      );
      timer.unref();
      try {
        const done = await call(initialize, initializer.timeout);
        log.logger.info(`${spec.name}: initializer ${initializer.handler} done`, { function: spec.name, ...done });
      } catch (error) {
        throw new FcAsyncError(
          'InitializerFailed',
          `${spec.name}: its initializer ${initializer.handler} ${hookProblem(error, initializer.timeout)}`,
          { cause: error },
        );
      } finally {
        clearTimeout(timer);
      }
    },
    async preStop() {
      if (!stop || !preStop) return;
      const timeout = Math.min(preStop.timeout, PRE_STOP_MAX_S);
      try {
        const done = await call(stop, timeout);
        log.logger.info(`${spec.name}: preStop ${preStop.handler} done`, { function: spec.name, ...done });
      } catch (error) {
        log.logger.warn(`${spec.name}: preStop ${preStop.handler} ${hookProblem(error, timeout)}`, {
          function: spec.name,
        });
      }
    },
  };
}

/** What went wrong with a hook's call, in words: its timeout, or its error's message and place. */
function hookProblem(error: unknown, timeoutS: number): string {
  if (isFunctionTimeout(error)) return `did not finish within its timeout (${timeoutS} s)`;
  // Read without throwing: a hook may throw anything (`Object.create(null)`, a Proxy).
  const message = thrownText(error).message.replace(/\s*\n\s*/g, ' ');
  let where: string | undefined;
  try {
    where = thrownAt(error);
  } catch {
    where = undefined; // a `stack` getter that throws
  }
  return `failed: ${message}${where ? ` (at ${where})` : ''}`;
}
