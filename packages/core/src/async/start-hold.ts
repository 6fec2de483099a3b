import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '../logger.js';
import type { AsyncBackend } from './backend.js';
import type { AsyncOptions } from './options.js';

/**
 * **Internal**: what a handler made under an {@link EngineStartHold} takes where its own options
 * say nothing: the emulator's flags and the function's s.yaml settings, as the handlers the
 * emulator builds itself get them.
 *
 * @internal
 * @example
 * ```ts
 * const defaults: HeldDefaults = { logger: silentLogger, async: { concurrency: 4, timeoutSeconds: 600 } };
 * ```
 */
export interface HeldDefaults {
  logger?: Logger | undefined;
  async?: Pick<AsyncOptions, 'concurrency' | 'maxQueuedTasks' | 'timeoutSeconds' | 'backoff' | 'backend'> | undefined;
  /** Kept out of task records and spans on top of the handler's own `redactHeaders` (the emulator's `--redact-header`). */
  redactHeaders?: readonly string[] | undefined;
}

/**
 * **Internal**: for `@fc-async/local`'s emulator, not public API; it may change in any release.
 *
 * Holds back the backend start of the engines made under {@link holdEngineStarts}. The emulator
 * loads an entry under one, so that an fc-async handler the entry makes with its own persistent
 * backend recovers (requeues unfinished tasks, calls the destinations a crash cut short) only once
 * the function's s.yaml async config is in force.
 *
 * @internal
 * @example
 * ```ts
 * let open!: () => void;
 * const opened = new Promise<void>((resolve) => (open = resolve));
 * const hold: EngineStartHold = {
 *   // Whatever waits for the engine starts it: the wait may be what the load itself awaits.
 *   enter: () => {
 *     let now!: () => void;
 *     const wanted = new Promise<void>((resolve) => (now = resolve));
 *     return { start: Promise.race([opened, wanted]), waited: () => now() };
 *   },
 * };
 * declare function loadEntry(): Promise<unknown>; // e.g. an import() of the user's module
 * await holdEngineStarts(hold, loadEntry);
 * open(); // the config is in force: every engine the entry made starts
 * ```
 */
export interface EngineStartHold {
  /**
   * Called in the constructor of each engine made under the hold, before its backend starts. The
   * backend starts once `start` resolves. `waited` is called at most once, when something first
   * waits for the engine to be ready (`whenReady()`, `accept`, the tasks API, `close()`) while its
   * backend still waits (or in the same tick as `start` resolved): the holder should start it then
   * unless it can tell the wait is not what holds its own release up. `backend` is the engine's
   * own (the one `defaults` gave, when it gave one).
   */
  enter(backend: { readonly name: string; readonly persistent: boolean }): {
    start: Promise<void>;
    waited(): void;
  };
  /**
   * Called once by each handler made under the hold, before its engine: what it takes where its
   * own options say nothing. `own.backend`: its options name a backend (a held one is not used).
   */
  defaults?(own: { readonly backend: boolean }): HeldDefaults | undefined;
  /**
   * The logger a custom-runtime middleware made under the hold (an app entry with `fcAsync()` in
   * it) logs through when its options name none; it takes nothing else of the hold.
   */
  logger?(): Logger | undefined;
  /**
   * Called once by each handler made under the hold whose options name a backend, before its
   * engine: the backend that engine gets instead. The emulator gives one that creates memory's
   * when it serves the function with an engine of its own (the handler is an inner one, which a
   * queue in front runs attempts through): a second engine on the same queue would be a second
   * worker of it, whose tasks never reach the emulator's destinations.
   */
  ownBackend?(backend: AsyncBackend): AsyncBackend;
  /**
   * Called once by each custom-runtime middleware made under the hold (`fcAsync()` in an app the
   * entry exports), with the backend its options name: `'platform'` when something in front of
   * the app (the emulator, playing FC) takes its async calls, so that the middleware runs in
   * platform mode, as behind FC, and never starts that backend.
   */
  middleware?(own: { readonly backend: AsyncBackend | undefined }): 'platform' | undefined;
}

// In globalThis under a registered symbol: the entry may import another copy of the core than the
// emulator's, whose engines must see the same hold. Versioned, so that a copy speaking another
// version of this contract ignores it.
const SLOT = Symbol.for('fc-async.engineStartHold.v1');
interface Holds {
  storage: AsyncLocalStorage<EngineStartHold>;
  /** Loads under a hold now: the storage is turned off when none is left. */
  active: number;
  /** The holds of {@link holdLateEngines}, the last one in force (a copy of the core before it has none). */
  late?: LateEngineHold[];
}
type Slot = Record<symbol, Holds | undefined>;

/**
 * **Internal**: for `@fc-async/local`'s emulator, not public API.
 *
 * Runs `fn` with every engine constructed within it (in its sync part or anything it starts:
 * awaits, timers, module evaluation of an `import()`) holding its backend start as `hold` says,
 * until the promise `fn` returns settles. The AsyncLocalStorage behind it is made on first use
 * and turned off again once no load is under a hold: while on, Node runs a hook for every promise
 * the process makes, which a server should not pay for after its start.
 *
 * @internal
 * @example
 * ```ts
 * declare const hold: EngineStartHold;
 * declare function loadEntry(): Promise<{ handler?: unknown }>; // e.g. an import() of the user's module
 * const mod = await holdEngineStarts(hold, loadEntry);
 * ```
 */
export async function holdEngineStarts<T>(hold: EngineStartHold, fn: () => Promise<T>): Promise<T> {
  const slot = globalThis as unknown as Slot;
  // Made on first use only: outside the emulator no AsyncLocalStorage exists, at no cost.
  slot[SLOT] ??= { storage: new AsyncLocalStorage<EngineStartHold>(), active: 0 };
  const holds = slot[SLOT];
  holds.active++;
  try {
    return await holds.storage.run(hold, fn);
  } finally {
    if (--holds.active === 0) holds.storage.disable();
  }
}

/**
 * **Internal**: for `@fc-async/local`'s emulator, not public API; it may change in any release.
 *
 * What a handler or `fcAsync()` made outside any {@link holdEngineStarts} asks while one is in
 * force (see {@link holdLateEngines}): those an entry makes once it has loaded (in a timer, a
 * callback, an `import()` it did not await, on its first request), which no longer tell which load
 * they belong to. Their engines start as any other; only a backend of their own goes through it.
 *
 * @internal
 * @example
 * ```ts
 * const late: LateEngineHold = { middleware: (own) => (own.backend?.persistent ? 'platform' : undefined) };
 * ```
 */
export type LateEngineHold = Pick<EngineStartHold, 'ownBackend' | 'middleware'>;

/**
 * **Internal**: for `@fc-async/local`'s emulator, not public API.
 *
 * Puts `hold` in force for the handlers and `fcAsync()` middlewares made outside any
 * {@link holdEngineStarts} until the returned function is called (see {@link LateEngineHold}). The
 * emulator puts one in force while it runs; the last one put in force is the one that applies.
 *
 * @internal
 * @example
 * ```ts
 * declare const late: LateEngineHold;
 * const release = holdLateEngines(late);
 * // ... the emulator serves its entries ...
 * release();
 * ```
 */
export function holdLateEngines(hold: LateEngineHold): () => void {
  const slot = globalThis as unknown as Slot;
  slot[SLOT] ??= { storage: new AsyncLocalStorage<EngineStartHold>(), active: 0 };
  slot[SLOT].late ??= [];
  const late = slot[SLOT].late;
  late.push(hold);
  return () => {
    const at = late.indexOf(hold);
    if (at >= 0) late.splice(at, 1);
  };
}

/** The hold an engine being constructed is under, if any. */
export function currentStartHold(): EngineStartHold | undefined {
  return (globalThis as unknown as Slot)[SLOT]?.storage.getStore();
}

/** The late hold in force (see {@link holdLateEngines}), for what is made under no {@link currentStartHold}. */
export function currentLateHold(): LateEngineHold | undefined {
  return (globalThis as unknown as Slot)[SLOT]?.late?.at(-1);
}
