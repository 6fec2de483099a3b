import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { configError, isObject, shown } from './errors.js';
import { readLifecycleHooks } from './lifecycle-spec.js';
import type { FunctionSpec, HealthCheck } from './spec.js';

type Obj = Record<string, unknown>;

/** FC's port of a custom runtime that names none. */
const DEFAULT_PORT = 9000;

/** A runtime the emulator starts as a process: `custom`, `custom.debian10/11/12`, not `custom-container`. */
export function isCustomRuntime(runtime: unknown): boolean {
  return typeof runtime === 'string' && runtime.startsWith('custom') && runtime !== 'custom-container';
}

/**
 * What starts a custom runtime, from its function props (FC 3.0 fc3 or FC 2.0 fc): the command
 * and args of `customRuntimeConfig` (else the code folder's `bootstrap`, as FC runs), the port,
 * and the `initializer` / `preStop` hooks of `instanceLifecycleConfig` (FC 2.0: `initializer`,
 * `initializationTimeout`), read by `version` ({@link readLifecycleHooks}). Throws `InvalidConfig` naming `where` for a malformed field.
 */
export function readCustomRuntime(
  file: string,
  where: string,
  folder: string,
  fn: Obj,
  version: 'fc2' | 'fc3',
): NonNullable<FunctionSpec['customRuntime']> {
  const fail = (field: string, problem: string) => configError(file, `${where}.${field} ${problem}`);
  const config = isObject(fn.customRuntimeConfig) ? fn.customRuntimeConfig : {};
  const words = (field: 'command' | 'args') => {
    const value = config[field];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || !value.every((w) => typeof w === 'string' || typeof w === 'number')) {
      throw fail(`customRuntimeConfig.${field}`, `must be a list of words, got ${shown(value)}`);
    }
    return value.map(String);
  };
  let command = [...words('command'), ...words('args')];
  if (words('command').length === 0) {
    if (!existsSync(join(folder, 'bootstrap'))) {
      throw fail('customRuntimeConfig.command', 'is missing, and the code folder has no bootstrap file to start');
    }
    command = ['./bootstrap', ...words('args')];
  }
  const port = config.port ?? fn.caPort ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65_535) {
    throw fail(
      config.port === undefined ? 'caPort' : 'customRuntimeConfig.port',
      `must be a port number, got ${shown(port)}`,
    );
  }
  const hooks = readLifecycleHooks(file, where, fn, version);
  return {
    command,
    port: port as number,
    initializer: hooks.initializer && { timeout: hooks.initializer.timeout },
    preStop: hooks.preStop && { timeout: hooks.preStop.timeout },
    healthCheck: readHealthCheck(config.healthCheckConfig ?? fn.customHealthCheckConfig, (field, problem) =>
      fail(
        `${config.healthCheckConfig === undefined ? 'customHealthCheckConfig' : 'customRuntimeConfig.healthCheckConfig'}${field ? `.${field}` : ''}`,
        problem,
      ),
    ),
  };
}

/** FC's ranges and defaults of each health check field (API 2023-03-30 `CustomHealthCheckConfig`). */
const HEALTH_FIELDS = {
  initialDelaySeconds: [0, 120, 0],
  periodSeconds: [1, 120, 3],
  timeoutSeconds: [1, 3, 1],
  failureThreshold: [1, 120, 3],
  successThreshold: [1, 120, 1],
} as const;

function readHealthCheck(value: unknown, fail: (field: string, problem: string) => Error): HealthCheck | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw fail('', 'must be a mapping');
  const check = {} as HealthCheck;
  for (const [field, [min, max, otherwise]] of Object.entries(HEALTH_FIELDS)) {
    const n = value[field] ?? otherwise;
    if (!Number.isInteger(n) || (n as number) < min || (n as number) > max) {
      throw fail(field, `must be a whole number from ${min} to ${max}, got ${shown(n)}`);
    }
    check[field as keyof typeof HEALTH_FIELDS] = n as number;
  }
  const url = value.httpGetUrl;
  if (url !== undefined && url !== null && url !== '') {
    if (typeof url !== 'string' || !url.startsWith('/') || url.length > 2048) {
      throw fail('httpGetUrl', `must be a path starting with / (at most 2048 characters), got ${shown(url)}`);
    }
    check.httpGetUrl = url;
  }
  return check;
}
