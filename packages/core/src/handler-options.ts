const HANDLER_KEYS = new Set([
  'logger',
  'textContentTypes',
  'detect',
  'env',
  'async',
  'destinations',
  'redactHeaders',
  'tracing',
]);
/** The custom-runtime middleware answers over HTTP: it has no `textContentTypes`. */
const RUNTIME_KEYS = new Set([...HANDLER_KEYS].filter((key) => key !== 'textContentTypes'));
const LOGGER_METHODS = ['debug', 'info', 'warn', 'error'] as const;

/** What a value is, for an option's error message: `null`, `array` or its `typeof`. */
export const kindOf = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;

/**
 * Checks the options of `createHandler` / `createFcHandler` (`kind: 'handler'`) or of the
 * custom-runtime middleware (`'runtime'`) when they are given, so that a misspelt key or a
 * value of the wrong kind fails at start-up with its name rather than at the first request:
 * unknown keys, `logger`, `detect`, `env` and `destinations` (`async`, `tracing`,
 * `redactHeaders` and `textContentTypes` are checked where they are read).
 *
 * @example
 * ```ts
 * checkHandlerOptions({ asynch: {} }, 'handler'); // TypeError: Unknown option `asynch`
 * ```
 */
export function checkHandlerOptions(options: unknown, kind: 'handler' | 'runtime'): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${kindOf(options)}\``);
  }
  const known = kind === 'handler' ? HANDLER_KEYS : RUNTIME_KEYS;
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new TypeError(
        key === 'textContentTypes'
          ? 'Unknown option `textContentTypes`: the custom-runtime middleware answers over HTTP, never in base64'
          : `Unknown option \`${key}\``,
      );
    }
  }
  const o = options as Record<string, unknown>;
  checkLogger(o.logger);
  if (o.detect !== undefined && typeof o.detect !== 'function') {
    throw new TypeError(`Expected \`detect\` to be a function, got \`${kindOf(o.detect)}\``);
  }
  if (o.env !== undefined) checkEnv(o.env);
  if (o.destinations !== undefined) checkDestinations(o.destinations, 'destinations');
}

/** Checks an `env` option: an object of environment variables. */
export function checkEnv(env: unknown): void {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw new TypeError(`Expected \`env\` to be an object of environment variables, got \`${kindOf(env)}\``);
  }
}

/**
 * Checks a `logger` option: `undefined`, or an object with `debug`, `info`, `warn` and `error`.
 *
 * @example
 * ```ts
 * checkLogger({ info() {} }); // TypeError: Expected `logger` to be an object with debug, info, warn and error methods, got `object` without debug, warn, error
 * ```
 */
export function checkLogger(logger: unknown): void {
  if (logger === undefined) return;
  const missing =
    typeof logger === 'object' && logger !== null
      ? LOGGER_METHODS.filter((method) => typeof (logger as Record<string, unknown>)[method] !== 'function')
      : [];
  if (typeof logger !== 'object' || logger === null || missing.length > 0) {
    throw new TypeError(
      `Expected \`logger\` to be an object with debug, info, warn and error methods, got \`${kindOf(logger)}\`${missing.length > 0 ? ` without ${missing.join(', ')}` : ''}`,
    );
  }
}

/**
 * Checks `{ onSuccess?, onFailure? }`, each side a destination function or an array of them.
 *
 * @example
 * ```ts
 * checkDestinations({ onSucces: fn }, 'destinations'); // TypeError: Unknown option `destinations.onSucces`
 * ```
 */
export function checkDestinations(value: unknown, name: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected \`${name}\` to be an object with onSuccess and onFailure, got \`${kindOf(value)}\``);
  }
  for (const [side, list] of Object.entries(value)) {
    if (side !== 'onSuccess' && side !== 'onFailure') throw new TypeError(`Unknown option \`${name}.${side}\``);
    if (list === undefined) continue;
    const items: unknown[] = Array.isArray(list) ? list : [list];
    items.forEach((item, i) => {
      if (typeof item !== 'function') {
        const at = Array.isArray(list) ? `${name}.${side}[${i}]` : `${name}.${side}`;
        throw new TypeError(
          `Expected \`${at}\` to be a destination (a function, e.g. httpDestination(url)), got \`${kindOf(item)}\``,
        );
      }
    });
  }
}
