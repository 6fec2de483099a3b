import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { configError, isObject } from './errors.js';
import { readAsyncConfig, readFc2AsyncConfig } from './serverless-async.js';
import { FUNCTION_NAME, type FunctionSpec } from './spec.js';
import { resolveVars, type VarContext, VarError } from './yaml-vars.js';

/**
 * What {@link loadServerlessConfig} read: the functions to serve, and notes about what it skipped
 * or could not resolve.
 *
 * @example
 * ```ts
 * const { functions, warnings } = await loadServerlessConfig('s.yaml');
 * ```
 */
export interface ServerlessConfig {
  file: string;
  functions: FunctionSpec[];
  warnings: string[];
}

/**
 * Options of {@link loadServerlessConfig}: what `${env(...)}` and `${config(...)}` resolve to.
 *
 * @example
 * ```ts
 * const options: ServerlessConfigOptions = { env: { STAGE: 'dev' }, accountId: '1234567890', region: 'cn-shanghai' };
 * ```
 */
export interface ServerlessConfigOptions {
  /** @default process.env */
  env?: Record<string, string | undefined>;
  /** `${config('AccountID')}`. @default '0' */
  accountId?: string;
  /** `${config('Region')}`, and the region of functions that name none. @default 'cn-hangzhou' */
  region?: string;
}

type Obj = Record<string, unknown>;

/**
 * Reads a Serverless Devs `s.yaml`: FC 3.0 `fc3` resources (`resources:`, edition 3) and FC 2.0
 * `fc` services (`services:`, edition 1), with their code path, handler, runtime, HTTP trigger and
 * async config (`asyncInvokeConfig` / `asyncConfiguration`). Functions of other runtimes than
 * Node.js are skipped with a warning. Throws an `FcAsyncError` with code `InvalidConfig`, whose
 * message names the file and the problem, for a malformed file.
 *
 * @example
 * ```ts
 * const config = await loadServerlessConfig('./s.yaml', { region: 'cn-hangzhou' });
 * for (const fn of config.functions) console.log(fn.name, fn.http ? 'HTTP' : 'event');
 * ```
 */
export async function loadServerlessConfig(
  path: string,
  options: ServerlessConfigOptions = {},
): Promise<ServerlessConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    throw configError(path, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(cause)})`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) throw configError(path, `invalid YAML: ${first.message.split('\n')[0]}`);
  const root: unknown = doc.toJS();
  if (!isObject(root)) throw configError(path, 'expected a mapping at the top level');
  const resources = root.resources ?? root.services;
  const section = root.resources !== undefined ? 'resources' : 'services';
  if (!isObject(resources)) {
    throw configError(path, 'has no `resources` mapping (Serverless Devs 3) or `services` mapping (Serverless Devs 1)');
  }
  const ctx: VarContext = {
    root,
    env: options.env ?? process.env,
    accountId: options.accountId ?? '0',
    region: options.region ?? 'cn-hangzhou',
    unresolved: new Set(),
  };
  const dir = dirname(resolve(path));
  const functions: FunctionSpec[] = [];
  const warnings: string[] = [];
  for (const [key, resource] of Object.entries(resources)) {
    const where = `${section}.${key}`;
    if (!isObject(resource)) throw configError(path, `${where} must be a mapping`);
    const kind = componentKind(resource.component);
    if (!kind) continue;
    if (!isObject(resource.props)) throw configError(path, `${where}.props must be a mapping`);
    let props: Obj;
    try {
      props = resolveVars(resource.props, ctx, resource) as Obj;
    } catch (error) {
      if (error instanceof VarError) throw configError(path, `${where}.props: ${error.message}`);
      throw error;
    }
    const read = kind === 'fc3' ? readFc3(props, `${where}.props`) : readFc2(props, `${where}.props`);
    const spec = read(path, dir, ctx.region);
    if (typeof spec === 'string') {
      warnings.push(`${key}: ${spec}`);
      continue;
    }
    if (functions.some((f) => f.name === spec.name)) {
      throw configError(path, `${where}: the function name ${spec.name} is used twice`);
    }
    functions.push(spec);
  }
  if (functions.length === 0) throw configError(path, 'defines no Node.js function of the fc3 or fc component');
  for (const expression of ctx.unresolved) warnings.push(`${expression} is not resolved locally and kept as written`);
  return { file: path, functions, warnings };
}

/** `fc3`, `devsapp/fc3`, `fc3@0.1.0` → fc3; `fc`, `devsapp/fc` → fc; anything else is not ours. */
function componentKind(component: unknown): 'fc3' | 'fc' | undefined {
  if (typeof component !== 'string') return undefined;
  const m = /^(?:[\w.-]+\/)?(fc3|fc)(?:@[\w.^~-]+)?$/.exec(component.trim());
  return m ? (m[1] as 'fc3' | 'fc') : undefined;
}

type Reader = (file: string, dir: string, region: string) => FunctionSpec | string;

function readFc3(raw: Obj, where: string): Reader {
  const props = isObject(raw.function) ? { ...raw, ...raw.function } : raw;
  return (file, dir, region) => {
    const trigger = httpTrigger(file, props.triggers, `${where}.triggers`, 'triggerType', 'triggerConfig');
    return base(file, dir, where, {
      name: props.functionName,
      code: props.code,
      handler: props.handler,
      runtime: props.runtime,
      region: props.region ?? region,
      memorySize: props.memorySize,
      timeout: props.timeout,
      environmentVariables: props.environmentVariables,
      http: trigger,
      style: 'fc3',
      asyncConfig: readAsyncConfig(file, props.asyncInvokeConfig, `${where}.asyncInvokeConfig`),
    });
  };
}

function readFc2(props: Obj, where: string): Reader {
  return (file, dir, region) => {
    const fn = props.function;
    if (!isObject(fn)) throw configError(file, `${where}.function must be a mapping`);
    const trigger = httpTrigger(file, props.triggers, `${where}.triggers`, 'type', 'config');
    return base(file, dir, `${where}.function`, {
      name: fn.name,
      code: fn.codeUri,
      handler: fn.handler,
      runtime: fn.runtime,
      region: props.region ?? region,
      memorySize: fn.memorySize,
      timeout: fn.timeout,
      environmentVariables: fn.environmentVariables,
      http: trigger,
      style: 'fc2',
      asyncConfig: readFc2AsyncConfig(file, fn.asyncConfiguration, `${where}.function.asyncConfiguration`),
    });
  };
}

interface RawFunction {
  name: unknown;
  code: unknown;
  handler: unknown;
  runtime: unknown;
  region: unknown;
  memorySize: unknown;
  timeout: unknown;
  environmentVariables: unknown;
  http: FunctionSpec['http'];
  style: FunctionSpec['style'];
  asyncConfig: FunctionSpec['asyncConfig'];
}

const EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

function base(file: string, dir: string, where: string, raw: RawFunction): FunctionSpec | string {
  const fail = (field: string, problem: string) => configError(file, `${where}.${field} ${problem}`);
  if (typeof raw.name !== 'string' || !FUNCTION_NAME.test(raw.name)) {
    throw fail(
      'functionName',
      `must be an FC function name (letters, digits, _ and -), got ${JSON.stringify(raw.name)}`,
    );
  }
  if (raw.runtime !== undefined && (typeof raw.runtime !== 'string' || !raw.runtime.startsWith('nodejs'))) {
    return `skipped: runtime ${String(raw.runtime)} is not a Node.js runtime`;
  }
  const codeDir = typeof raw.code === 'string' ? raw.code : isObject(raw.code) ? raw.code.src : undefined;
  if (typeof codeDir !== 'string' || codeDir === '') {
    throw fail('code', 'must be the path of the code folder (OSS code cannot run locally)');
  }
  const m = typeof raw.handler === 'string' ? /^(.+)\.([A-Za-z_$][\w$]*)$/.exec(raw.handler) : null;
  if (!m) throw fail('handler', `must look like file.export (index.handler), got ${JSON.stringify(raw.handler)}`);
  const stem = resolve(dir, codeDir, m[1] as string);
  const candidates = extname(stem) ? [stem] : EXTENSIONS.map((ext) => stem + ext);
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw fail('handler', `${raw.handler}: none of ${candidates.map((c) => relative(dir, c)).join(', ')} exists`);
  }
  return {
    name: raw.name,
    file: found,
    exportName: m[2],
    handler: raw.handler as string,
    http: raw.http,
    style: raw.style,
    runtime: raw.runtime as string | undefined,
    region: typeof raw.region === 'string' ? raw.region : undefined,
    memorySize: optionalNumber(file, raw.memorySize, `${where}.memorySize`),
    timeout: timeoutOf(file, raw.timeout, `${where}.timeout`),
    environmentVariables: stringMap(file, raw.environmentVariables, `${where}.environmentVariables`),
    asyncConfig: raw.asyncConfig,
  };
}

function optionalNumber(file: string, value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value > 0)) throw configError(file, `${where} must be a positive number`);
  return value;
}

/** FC's function timeout: whole seconds, 1 to 86400. */
function timeoutOf(file: string, value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 86_400) {
    throw configError(file, `${where} must be an integer from 1 to 86400 (seconds), got ${JSON.stringify(value)}`);
  }
  return value as number;
}

function stringMap(file: string, value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw configError(file, `${where} must be a mapping of names to values`);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

function httpTrigger(
  file: string,
  triggers: unknown,
  where: string,
  typeKey: string,
  configKey: string,
): FunctionSpec['http'] {
  if (triggers === undefined) return undefined;
  if (!Array.isArray(triggers)) throw configError(file, `${where} must be a list`);
  const index = triggers.findIndex((t) => isObject(t) && t[typeKey] === 'http');
  if (index < 0) return undefined;
  const config = (triggers[index] as Obj)[configKey];
  const methods = isObject(config) ? config.methods : undefined;
  if (methods === undefined) return {};
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) {
    throw configError(file, `${where}[${index}].${configKey}.methods must be a list of HTTP methods`);
  }
  return { methods: methods.map((m: string) => m.toUpperCase()) };
}
