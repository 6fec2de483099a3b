import { destinationArnProblem } from './destinations.js';
import { configError, isObject, shown, shownNumber } from './errors.js';
import { closest } from './serverless-keys.js';
import type { AsyncConfigInput } from './spec.js';

/** Checks one async-config field; `problem` is undefined when the value is fine. */
export function asyncFieldProblem(field: keyof AsyncConfigInput, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  switch (field) {
    case 'maxAsyncRetryAttempts':
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 8
        ? undefined
        : `must be an integer from 0 to 8, got ${shownNumber(value)}`;
    case 'maxAsyncEventAgeInSeconds':
      return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 604_800
        ? undefined
        : `must be an integer from 1 to 604800, got ${shownNumber(value)}`;
    case 'asyncTask':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${shown(value)}`;
    case 'destinationConfig':
      return destinationProblem(value);
  }
}

function destinationProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'must be a mapping with onSuccess and/or onFailure';
  for (const side of Object.keys(value)) {
    if (side !== 'onSuccess' && side !== 'onFailure') {
      const near = closest(side, ['onSuccess', 'onFailure']);
      return `has an unknown key ${side}${near ? `; did you mean ${near}?` : ''}`;
    }
    const target = value[side];
    if (target === undefined || target === null) continue;
    if (!isObject(target) || typeof target.destination !== 'string' || target.destination === '') {
      return `${side} must be a mapping with a destination ARN`;
    }
    const problem = destinationArnProblem(target.destination);
    if (problem) return `${side}.destination ${problem}`;
  }
  return undefined;
}

/** Copies the known fields of an FC 3.0 async config after checking them; `check` reports a problem. */
export function pickAsyncConfig(raw: Record<string, unknown>, fail: (field: string, problem: string) => Error) {
  const out: AsyncConfigInput = {};
  for (const field of [
    'maxAsyncRetryAttempts',
    'maxAsyncEventAgeInSeconds',
    'asyncTask',
    'destinationConfig',
  ] as const) {
    const problem = asyncFieldProblem(field, raw[field]);
    if (problem) throw fail(field, problem);
  }
  if (raw.maxAsyncRetryAttempts !== undefined) out.maxAsyncRetryAttempts = raw.maxAsyncRetryAttempts as number;
  if (raw.maxAsyncEventAgeInSeconds !== undefined)
    out.maxAsyncEventAgeInSeconds = raw.maxAsyncEventAgeInSeconds as number;
  if (raw.asyncTask !== undefined) out.asyncTask = raw.asyncTask as boolean;
  const dest = raw.destinationConfig as AsyncConfigInput['destinationConfig'];
  if (dest) {
    out.destinationConfig = {};
    if (dest.onSuccess) out.destinationConfig.onSuccess = { destination: dest.onSuccess.destination };
    if (dest.onFailure) out.destinationConfig.onFailure = { destination: dest.onFailure.destination };
  }
  return out;
}

/** `asyncInvokeConfig` of an fc3 function (`statefulInvocation` is read as `asyncTask`). */
export function readAsyncConfig(file: string, value: unknown, where: string): AsyncConfigInput | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw configError(file, `${where} must be a mapping`);
  const raw = { ...value };
  if (raw.asyncTask === undefined && raw.statefulInvocation !== undefined) raw.asyncTask = raw.statefulInvocation;
  return pickAsyncConfig(raw, (field, problem) => configError(file, `${where}.${field} ${problem}`));
}

/** `asyncConfiguration` of an FC 2.0 `fc` function: `destination.onSuccess` ARNs, `statefulInvocation`. */
export function readFc2AsyncConfig(file: string, value: unknown, where: string): AsyncConfigInput | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw configError(file, `${where} must be a mapping`);
  const raw: Record<string, unknown> = {
    maxAsyncRetryAttempts: value.maxAsyncRetryAttempts,
    maxAsyncEventAgeInSeconds: value.maxAsyncEventAgeInSeconds,
    asyncTask: value.statefulInvocation,
  };
  const destination = value.destination;
  if (destination !== undefined && destination !== null) {
    if (!isObject(destination)) throw configError(file, `${where}.destination must be a mapping`);
    const config: Record<string, unknown> = {};
    for (const side of ['onSuccess', 'onFailure'] as const) {
      const arn = destination[side];
      if (arn === undefined || arn === null) continue;
      if (typeof arn !== 'string' || arn === '') throw configError(file, `${where}.destination.${side} must be an ARN`);
      config[side] = { destination: arn };
    }
    raw.destinationConfig = config;
  }
  return pickAsyncConfig(raw, (field, problem) => configError(file, `${where}.${field} ${problem}`));
}
