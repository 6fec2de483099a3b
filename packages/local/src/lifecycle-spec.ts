import { configError, isObject, shown } from './errors.js';

type Obj = Record<string, unknown>;

/** FC's timeout of a lifecycle hook that names none (s). */
const DEFAULT_HOOK_TIMEOUT = 3;

/** A lifecycle hook as the s.yaml configures it: its handler (`file.export`) and its timeout (s). */
export interface LifecycleHookConfig {
  handler: string;
  timeout: number;
}

/**
 * The `initializer` and `preStop` hooks of a function's props: `instanceLifecycleConfig.<hook>`
 * (`handler`, `timeout`), or FC 2.0's `initializer` and `initializationTimeout`; a hook without a
 * handler (none, `''`) is not configured. Throws `InvalidConfig` naming `where` and the field for
 * an `instanceLifecycleConfig` or hook that is not a mapping, a timeout that is not a whole
 * positive number of seconds (FC's `LifecycleHook.timeout` is an integer), and, with `named` (a
 * Node.js function, whose hook is a `file.export` to call), a handler that is not text.
 *
 * @example
 * ```ts
 * readLifecycleHooks('s.yaml', 'resources.f.props', { initializer: 'index.init' });
 * // { initializer: { handler: 'index.init', timeout: 3 }, preStop: undefined }
 * ```
 */
export function readLifecycleHooks(
  file: string,
  where: string,
  fn: Obj,
  named = false,
): { initializer?: LifecycleHookConfig | undefined; preStop?: LifecycleHookConfig | undefined } {
  const fail = (field: string, problem: string) => configError(file, `${where}.${field} ${problem}`);
  const config = fn.instanceLifecycleConfig;
  if (config !== undefined && config !== null && !isObject(config)) {
    throw fail('instanceLifecycleConfig', `must be a mapping (initializer, preStop), got ${shown(config)}`);
  }
  const lifecycle: Obj = config ?? {};
  const hook = (name: 'initializer' | 'preStop', fc2Handler: unknown, fc2Timeout: unknown) => {
    const value = lifecycle[name];
    if (value !== undefined && value !== null && !isObject(value)) {
      throw fail(`instanceLifecycleConfig.${name}`, `must be a mapping (handler, timeout), got ${shown(value)}`);
    }
    const own: Obj = value ?? {};
    const fromOwn = own.handler !== undefined && own.handler !== null;
    const handler = fromOwn ? own.handler : fc2Handler;
    if (handler === undefined || handler === null || handler === '') return undefined;
    if (typeof handler !== 'string') {
      // A custom runtime's handler is not called (POST /initialize is): it only says the hook is on.
      if (!named) return undefined;
      throw fail(
        fromOwn ? `instanceLifecycleConfig.${name}.handler` : name,
        `must look like file.export (index.${name}), got ${shown(handler)}`,
      );
    }
    const timeout = own.timeout ?? fc2Timeout ?? DEFAULT_HOOK_TIMEOUT;
    const field =
      own.timeout === undefined && fc2Timeout !== undefined
        ? 'initializationTimeout'
        : `instanceLifecycleConfig.${name}.timeout`;
    if (typeof timeout !== 'number' || !(timeout > 0)) {
      throw fail(field, `must be a positive number of seconds, got ${shown(timeout)}`);
    }
    if (!Number.isInteger(timeout)) {
      throw fail(
        field,
        `must be a whole number of seconds (FC's hook timeout is an integer), got ${Number.isFinite(timeout) ? shown(timeout) : String(timeout)}`,
      );
    }
    return { handler, timeout };
  };
  return {
    initializer: hook('initializer', fn.initializer, fn.initializationTimeout),
    preStop: hook('preStop', undefined, undefined),
  };
}
