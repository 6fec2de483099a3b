import { configError, isObject, shown } from './errors.js';

type Obj = Record<string, unknown>;

/** FC's timeout of a lifecycle hook that names none (s). */
const DEFAULT_HOOK_TIMEOUT = 3;

/** A lifecycle hook as the s.yaml configures it: its handler (`file.export`) and its timeout (s). */
export interface LifecycleHookConfig {
  handler: string;
  timeout: number;
}

/** A lifecycle hook as read, with the s.yaml field its handler came from (for the errors that name it). */
export interface LifecycleHookRead extends LifecycleHookConfig {
  field: string;
}

/**
 * The `initializer` and `preStop` hooks of a function's props, by the component's FC version:
 * FC 3.0 (`fc3`) names both under `instanceLifecycleConfig.<hook>` (`handler`, `timeout`); FC 2.0
 * (`fc`) names the initializer `initializer` (with `initializationTimeout`) and `preStop` under
 * `instanceLifecycleConfig`, whose own `initializer` it does not have. The other version's key
 * would run no hook on FC: it is refused, naming the key this version reads. A hook without a
 * handler (none, `''`) is not configured. Throws `InvalidConfig` naming `where` and the field for
 * an `instanceLifecycleConfig` or hook that is not a mapping, a timeout that is not a whole
 * positive number of seconds (FC's `LifecycleHook.timeout` is an integer), and, with `named` (a
 * Node.js function, whose hook is a `file.export` to call), a handler that is not text.
 *
 * @example
 * ```ts
 * readLifecycleHooks('s.yaml', 'services.web.props.function', { initializer: 'index.init' }, 'fc2');
 * // { initializer: { handler: 'index.init', timeout: 3, field: 'initializer' }, preStop: undefined }
 * ```
 */
export function readLifecycleHooks(
  file: string,
  where: string,
  fn: Obj,
  version: 'fc2' | 'fc3',
  named = false,
): { initializer?: LifecycleHookRead | undefined; preStop?: LifecycleHookRead | undefined } {
  const fail = (field: string, problem: string) => configError(file, `${where}.${field} ${problem}`);
  const config = fn.instanceLifecycleConfig;
  if (config !== undefined && config !== null && !isObject(config)) {
    throw fail('instanceLifecycleConfig', `must be a mapping (initializer, preStop), got ${shown(config)}`);
  }
  const lifecycle: Obj = config ?? {};
  if (version === 'fc3') {
    for (const key of ['initializer', 'initializationTimeout']) {
      // FC 2.0's keys in an fc3 resource: FC 3.0 has no such field, and would run no initializer
      // (a custom runtime's POST /initialize no more than a Node.js function's hook).
      if (fn[key] !== undefined) {
        throw fail(
          key,
          "is FC 2.0's `fc` component key: the fc3 component names the hook instanceLifecycleConfig.initializer (handler, timeout)",
        );
      }
    }
  } else if (lifecycle.initializer !== undefined && lifecycle.initializer !== null) {
    // FC 3.0's hook in an fc function: FC 2.0's instanceLifecycleConfig has preFreeze and preStop
    // alone, and would run no initializer.
    throw fail(
      'instanceLifecycleConfig.initializer',
      "is FC 3.0's `fc3` component key: the fc component names the hook initializer (file.export), with initializationTimeout",
    );
  }
  const hook = (name: 'initializer' | 'preStop'): LifecycleHookRead | undefined => {
    const fc2Initializer = version === 'fc2' && name === 'initializer';
    const value = fc2Initializer ? { handler: fn.initializer, timeout: fn.initializationTimeout } : lifecycle[name];
    if (value !== undefined && value !== null && !isObject(value)) {
      throw fail(`instanceLifecycleConfig.${name}`, `must be a mapping (handler, timeout), got ${shown(value)}`);
    }
    const own: Obj = value ?? {};
    const handler = own.handler;
    if (handler === undefined || handler === null || handler === '') return undefined;
    const field = fc2Initializer ? 'initializer' : `instanceLifecycleConfig.${name}.handler`;
    if (typeof handler !== 'string') {
      // A custom runtime's handler is not called (POST /initialize is): it only says the hook is on.
      if (!named) return undefined;
      throw fail(field, `must look like file.export (index.${name}), got ${shown(handler)}`);
    }
    const timeout = own.timeout ?? DEFAULT_HOOK_TIMEOUT;
    const timeoutField = fc2Initializer ? 'initializationTimeout' : `instanceLifecycleConfig.${name}.timeout`;
    if (typeof timeout !== 'number' || !(timeout > 0)) {
      throw fail(timeoutField, `must be a positive number of seconds, got ${shown(timeout)}`);
    }
    if (!Number.isInteger(timeout)) {
      throw fail(
        timeoutField,
        `must be a whole number of seconds (FC's hook timeout is an integer), got ${Number.isFinite(timeout) ? shown(timeout) : String(timeout)}`,
      );
    }
    return { handler, timeout, field };
  };
  return { initializer: hook('initializer'), preStop: hook('preStop') };
}
