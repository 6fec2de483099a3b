import { applyAsyncConfig, type DestinationContext, destinationArnProblem } from '../destinations.js';
import { isObject } from '../errors.js';
import type { LocalFunction } from '../function.js';
import type { FunctionRegistry } from '../registry.js';
import { pickAsyncConfig } from '../serverless-async.js';
import { closest } from '../serverless-keys.js';
import { type ApiCall, checkQualifier, integer, single } from './params.js';
import { ApiError, invalid, sendApi } from './respond.js';

/** FC's `AsyncConfig` of a function: what is stored, with the defaults of unset retries and age. */
export function asyncConfigView(fn: LocalFunction): Record<string, unknown> {
  const c = fn.asyncConfig;
  if (!c)
    throw new ApiError(404, 'AsyncConfigNotExists', `async invoke config of function '${fn.spec.name}' does not exist`);
  return {
    asyncTask: c.asyncTask ?? false,
    createdTime: c.createdTime,
    destinationConfig: c.destinationConfig ?? {},
    functionArn: fn.arn,
    lastModifiedTime: c.lastModifiedTime,
    maxAsyncEventAgeInSeconds: c.maxAsyncEventAgeInSeconds ?? 86_400,
    maxAsyncRetryAttempts: c.maxAsyncRetryAttempts ?? 3,
  };
}

/** GetAsyncInvokeConfig. */
export function getAsyncInvokeConfig(call: ApiCall): void {
  checkQualifier(call.params);
  sendApi(call.res, call.requestId, 200, asyncConfigView(call.fn));
}

/** PutAsyncInvokeConfigInput's fields. */
const INPUT_FIELDS = ['maxAsyncRetryAttempts', 'maxAsyncEventAgeInSeconds', 'asyncTask', 'destinationConfig'];

/** The rest of what GetAsyncInvokeConfig answers: a config read, changed and put back carries them (ignored). */
const READ_ONLY_FIELDS = ['functionArn', 'createdTime', 'lastModifiedTime'];

/**
 * Ours (FC's reference is silent): a field of neither kind is refused, as an unknown key under
 * `destinationConfig` is: a misspelt one, since the Put replaces the whole config, would
 * otherwise put its default in force without a word.
 */
function unknownField(input: Record<string, unknown>): string | undefined {
  for (const key of Object.keys(input)) {
    if (INPUT_FIELDS.includes(key) || READ_ONLY_FIELDS.includes(key)) continue;
    if (key === 'statefulInvocation') return "statefulInvocation is FC 2.0's name: API 2023-03-30 takes asyncTask";
    const near = closest(key, INPUT_FIELDS);
    return `The body has an unknown field ${key.slice(0, 64)}${near ? `; did you mean ${near}?` : ''}`;
  }
  return undefined;
}

/** PutAsyncInvokeConfig: replaces the config; retries, age and destinations apply to tasks from now on. */
export function putAsyncInvokeConfig(call: ApiCall, ctx: DestinationContext): void {
  checkQualifier(call.params);
  // FC requires the body; an empty one would put every default in force.
  if (call.body.length === 0) throw invalid('The body is required: a PutAsyncInvokeConfigInput JSON object');
  let input: unknown;
  try {
    input = JSON.parse(call.body.toString('utf8'));
  } catch {
    throw invalid('The body is not valid JSON');
  }
  if (!isObject(input)) throw invalid('The body must be a JSON object (PutAsyncInvokeConfigInput)');
  const unknown = unknownField(input);
  if (unknown) throw invalid(unknown);
  const config = pickAsyncConfig(input, (field, problem) => invalid(`${field} ${problem}`));
  for (const side of ['onSuccess', 'onFailure'] as const) {
    const arn = config.destinationConfig?.[side]?.destination;
    const problem = arn === undefined ? undefined : destinationArnProblem(arn);
    if (problem) throw invalid(`destinationConfig.${side}.destination ${problem}`);
  }
  const now = new Date().toISOString();
  const previous = call.fn.asyncConfig;
  call.fn.asyncConfig = { ...config, createdTime: previous?.createdTime ?? now, lastModifiedTime: now };
  try {
    applyAsyncConfig(call.fn, ctx);
  } catch (error) {
    // Nothing was put in force (the engine is configured last): keep the config that is.
    call.fn.asyncConfig = previous;
    throw error;
  }
  sendApi(call.res, call.requestId, 200, asyncConfigView(call.fn));
}

/** DeleteAsyncInvokeConfig: back to FC's defaults (3 retries, 86400 s, no destinations). */
export function deleteAsyncInvokeConfig(call: ApiCall, ctx: DestinationContext): void {
  checkQualifier(call.params);
  asyncConfigView(call.fn);
  call.fn.asyncConfig = undefined;
  applyAsyncConfig(call.fn, ctx);
  sendApi(call.res, call.requestId, 204);
}

/** ListAsyncInvokeConfigs: `GET /2023-03-30/async-invoke-configs`, by function name. */
export function listAsyncInvokeConfigs(
  params: URLSearchParams,
  registry: FunctionRegistry,
): { configs: unknown[]; nextToken?: string } {
  const limit = integer(params, 'limit', 1, 100) ?? 20;
  const name = single(params, 'functionName');
  const token = single(params, 'nextToken');
  const after = token ? configsAfter(token) : '';
  const names = registry.all
    .filter((f) => f.asyncConfig && (!name || f.spec.name === name) && f.spec.name > after)
    .sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1));
  const page = names.slice(0, limit);
  const last = page[page.length - 1];
  return {
    configs: page.map(asyncConfigView),
    ...(names.length > limit && last
      ? { nextToken: `${CONFIG_TOKEN}${Buffer.from(last.spec.name).toString('base64url')}` }
      : {}),
  };
}

/** What a ListAsyncInvokeConfigs token starts with: one of ListAsyncTasks' (or any string) is refused, not read as a name. */
const CONFIG_TOKEN = 'cfg.';

/** The function name a ListAsyncInvokeConfigs token lists after; 400 for a token this service did not issue. */
function configsAfter(token: string): string {
  const encoded = token.startsWith(CONFIG_TOKEN) ? token.slice(CONFIG_TOKEN.length) : '';
  const name = Buffer.from(encoded, 'base64url').toString('utf8');
  if (name === '' || Buffer.from(name).toString('base64url') !== encoded) {
    throw new ApiError(400, 'InvalidArgument', 'nextToken is not a token this service issued');
  }
  return name;
}
