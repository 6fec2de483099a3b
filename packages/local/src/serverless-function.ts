import { existsSync, statSync } from 'node:fs';
import { extname, relative, resolve } from 'node:path';
import { isCustomRuntime, readCustomRuntime } from './custom-runtime-spec.js';
import { configError, isObject, shown, shownNumber } from './errors.js';
import { readLifecycleHooks } from './lifecycle-spec.js';
import { FUNCTION_NAME, type FunctionSpec, type LifecycleHook } from './spec.js';

type Obj = Record<string, unknown>;

/** One function as an fc3 or fc resource gives it, before it is checked. */
export interface RawFunction {
  name: unknown;
  code: unknown;
  handler: unknown;
  runtime: unknown;
  /** What a custom runtime or container starts ({@link startCommand}). */
  command: unknown[];
  region: unknown;
  memorySize: unknown;
  timeout: unknown;
  environmentVariables: unknown;
  http: FunctionSpec['http'];
  style: FunctionSpec['style'];
  /** FC 2.0: the service's `name`. */
  serviceName?: unknown;
  asyncConfig: FunctionSpec['asyncConfig'];
  /** Read by {@link readLogConfig}. */
  logConfig: FunctionSpec['logConfig'];
  /** The function's own props, for what a custom runtime reads ({@link readCustomRuntime}). */
  props?: Obj | undefined;
}

const EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

/**
 * Checks one function and finds its module: the spec to serve, or why it is skipped (another
 * runtime). Throws `InvalidConfig` naming `where` for a field FC would refuse or a missing handler file.
 */
export function checkFunction(file: string, dir: string, where: string, raw: RawFunction): FunctionSpec | string {
  const fail = (field: string, problem: string) => configError(file, `${where}.${field} ${problem}`);
  // The keys of the file as written: FC 2.0's `fc` component names them `name` and `codeUri`.
  const fc2 = raw.style === 'fc2';
  const codeKey = fc2 ? 'codeUri' : 'code';
  if (typeof raw.name !== 'string' || !FUNCTION_NAME.test(raw.name)) {
    const variable =
      typeof raw.name === 'string' && /\$\{|\{\{/.test(raw.name) ? ' (a variable not resolved locally)' : '';
    throw fail(
      fc2 ? 'name' : 'functionName',
      `must be an FC function name (1 to 64 letters, digits, _ and -, starting with a letter or _), got ${shown(raw.name)}${variable}`,
    );
  }
  const custom = isCustomRuntime(raw.runtime);
  if (!custom && raw.runtime !== undefined && (typeof raw.runtime !== 'string' || !raw.runtime.startsWith('nodejs'))) {
    return skipReason(raw.runtime, raw.command);
  }
  const codeDir = typeof raw.code === 'string' ? raw.code : isObject(raw.code) ? raw.code.src : undefined;
  if (raw.code === undefined && !fc2 && raw.props?.codeUri !== undefined) {
    // FC 2.0's key in an fc3 resource: the component names it `code`.
    throw fail(
      codeKey,
      "is missing: the fc3 component names the code folder `code` (`codeUri` is FC 2.0's `fc` component)",
    );
  }
  if (raw.code === undefined && fc2 && raw.props?.code !== undefined) {
    // FC 3.0's key in an fc function: the component names it `codeUri`, and would deploy no code.
    throw fail(
      codeKey,
      "is missing: the fc component names the code folder `codeUri` (`code` is FC 3.0's `fc3` component)",
    );
  }
  if (typeof codeDir !== 'string' || codeDir === '') {
    throw fail(codeKey, 'must be the path of the code folder (OSS code cannot run locally)');
  }
  if (/\.(zip|jar|war)$/i.test(codeDir)) {
    throw fail(
      codeKey,
      `${codeDir} is an archive: fc-async dev runs code from a folder (point ${codeKey} at the unpacked folder)`,
    );
  }
  const common = {
    name: raw.name,
    http: raw.http,
    style: raw.style,
    serviceName: typeof raw.serviceName === 'string' ? raw.serviceName : undefined,
    runtime: raw.runtime as string | undefined,
    region: typeof raw.region === 'string' ? raw.region : undefined,
    memorySize: optionalNumber(file, raw.memorySize, `${where}.memorySize`),
    timeout: timeoutOf(file, raw.timeout, `${where}.timeout`),
    environmentVariables: stringMap(file, raw.environmentVariables, `${where}.environmentVariables`),
    asyncConfig: raw.asyncConfig,
    logConfig: raw.logConfig,
  };
  if (custom) {
    const folder = resolve(dir, codeDir);
    if (!isFolder(folder)) throw fail(codeKey, `${codeDir} is not a folder (the custom runtime's command runs there)`);
    return {
      ...common,
      file: folder,
      handler: typeof raw.handler === 'string' ? raw.handler : 'index.handler',
      customRuntime: readCustomRuntime(file, where, folder, raw.props ?? {}, fc2 ? 'fc2' : 'fc3'),
    };
  }
  // A code folder that is not there would otherwise be reported as the handler's file missing.
  const codeProblem = folderProblem(resolve(dir, codeDir));
  if (codeProblem) throw fail(codeKey, `${codeDir} ${codeProblem}`);
  const handler = moduleOf(dir, codeDir, raw.handler, (problem) => fail('handler', problem));
  const hooks = readLifecycleHooks(file, where, raw.props ?? {}, fc2 ? 'fc2' : 'fc3', true);
  const hook = (name: 'initializer' | 'preStop'): LifecycleHook | undefined => {
    const config = hooks[name];
    if (!config) return undefined;
    const { field, ...read } = config;
    return { ...read, ...moduleOf(dir, codeDir, config.handler, (problem) => fail(field, problem)) };
  };
  const lifecycle = { initializer: hook('initializer'), preStop: hook('preStop') };
  return {
    ...common,
    ...handler,
    handler: raw.handler as string,
    ...(lifecycle.initializer || lifecycle.preStop ? { lifecycle } : {}),
  };
}

/**
 * The module and export of a handler named as FC names it (`index.handler`) in the code folder:
 * FC splits at the last dot, so `main.bundle.handler` is module `main.bundle`, which Node's require
 * finds as the file itself, else with an extension added (`main.bundle.js`, as bundlers name them).
 * Throws what `fail` makes of the problem when the name is malformed or no such file exists.
 */
function moduleOf(
  dir: string,
  codeDir: string,
  handler: unknown,
  fail: (problem: string) => Error,
): { file: string; exportName: string } {
  const m = typeof handler === 'string' ? /^(.+)\.([A-Za-z_$][\w$]*)$/.exec(handler) : null;
  if (!m) throw fail(`must look like file.export (index.handler), got ${shown(handler)}`);
  const stem = resolve(dir, codeDir, m[1] as string);
  const candidates = [...(extname(stem) ? [stem] : []), ...EXTENSIONS.map((ext) => stem + ext)];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw fail(`${handler as string}: none of ${candidates.map((c) => relative(dir, c)).join(', ')} exists`);
  return { file: found, exportName: m[2] as string };
}

/** Why `path` is not a folder the code can be read from, or undefined when it is one. */
function folderProblem(path: string): string | undefined {
  if (!existsSync(path)) return `is not a folder: nothing is at ${path}`;
  return isFolder(path) ? undefined : 'is a file, not the folder of the code';
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/** What a custom runtime or container starts: `customRuntimeConfig.command`, or the container's entrypoint and command. */
export function startCommand(fn: Record<string, unknown>): unknown[] {
  if (isObject(fn.customRuntimeConfig)) return list(fn.customRuntimeConfig.command);
  const container = fn.customContainerConfig;
  return isObject(container) ? [...list(container.entrypoint), ...list(container.command)] : [];
}

/**
 * Why a function of another runtime is skipped. A container is not built or run; one that starts
 * Node.js gets the ways to serve its code.
 */
function skipReason(runtime: unknown, command: unknown[]): string {
  const line = command.map(String).join(' ');
  if (runtime === 'custom-container') {
    const node = /^(\S*\/)?(node|npm|npx|pnpm|yarn)\b/.test(line);
    return node
      ? `skipped: runtime custom-container (an image fc-async dev does not run) starts its own server (${line}); serve its code as runtime custom.debian12 with customRuntimeConfig.command, or run \`fc-async dev <file exporting the app>\``
      : 'skipped: runtime custom-container is an image fc-async dev does not run';
  }
  return `skipped: runtime ${String(runtime)} is not a Node.js runtime`;
}

/** A project or logstore name known locally: text, not a variable left unresolved. */
function logName(file: string, value: unknown, where: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' && typeof value !== 'number') throw configError(file, `${where} must be a name`);
  const name = String(value);
  return /\$\{|\{\{/.test(name) ? undefined : name;
}

/**
 * The `logConfig` of a function (FC 2.0: of its service): its project and logstore when the s.yaml
 * names both; `undefined` for none, `auto` in any case (names chosen at deploy, as Serverless Devs
 * reads it) or a name or whole config left unresolved.
 */
export function readLogConfig(file: string, value: unknown, where: string): FunctionSpec['logConfig'] {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && (value.toLowerCase() === 'auto' || /\$\{|\{\{/.test(value))) return undefined;
  if (!isObject(value)) {
    throw configError(file, `${where} must be auto or a mapping with project and logstore, got ${shown(value)}`);
  }
  const project = logName(file, value.project, `${where}.project`);
  const logstore = logName(file, value.logstore, `${where}.logstore`);
  return project !== undefined && logstore !== undefined ? { project, logstore } : undefined;
}

function optionalNumber(file: string, value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value > 0)) {
    throw configError(file, `${where} must be a positive number, got ${shownNumber(value)}`);
  }
  return value;
}

/** FC's function timeout: whole seconds, 1 to 86400. */
function timeoutOf(file: string, value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 86_400) {
    throw configError(file, `${where} must be an integer from 1 to 86400 (seconds), got ${shownNumber(value)}`);
  }
  return value as number;
}

function stringMap(file: string, value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw configError(file, `${where} must be a mapping of names to values`);
  for (const [k, v] of Object.entries(value)) {
    // FC takes text: a mapping or list (`${file('x.json')}` in the wrong place) must not become "[object Object]".
    if (typeof v === 'object' && v !== null) {
      throw configError(
        file,
        `${where}.${k} must be text, a number or a boolean, got a ${Array.isArray(v) ? 'list' : 'mapping'}`,
      );
    }
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** The first `http` trigger of `triggers`, with its methods in capitals. */
export function httpTrigger(
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
  return { methods: methodList(file, methods, `${where}[${index}].${configKey}.methods`) };
}

/**
 * A `methods` list (an HTTP trigger's, a custom domain route's) in capitals; throws `InvalidConfig`
 * naming `where` when it is no list of text.
 */
export function methodList(file: string, methods: unknown, where: string): string[] {
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) {
    throw configError(file, `${where} must be a list of HTTP methods`);
  }
  return methods.map((m: string) => m.toUpperCase());
}
