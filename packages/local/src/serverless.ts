import { dirname, resolve } from 'node:path';
import { configError, isObject, withValueOrigins } from './errors.js';
import { checkServerlessConfigOptions } from './options.js';
import { readAsyncConfig, readFc2AsyncConfig } from './serverless-async.js';
import { blameSource, notAppliedNotice, readServerlessDoc, type ServedResource } from './serverless-doc.js';
import { checkFunction, httpTrigger, methodList, readLogConfig, startCommand } from './serverless-function.js';
import { fc2KeyNotes, fc3KeyNotes } from './serverless-keys.js';
import type { FunctionSpec } from './spec.js';
import { resolveVars, type ThisContext, type VarContext, VarError } from './yaml-vars.js';

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
  /** Takes precedence over the `.env` file beside the s.yaml. @default process.env */
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
 * async config (`asyncInvokeConfig` / `asyncConfiguration`), after YAML merge keys, the file it
 * `extend`s, resource templates (`template` + `extend.name`) and its variables; an fc3 function a
 * custom domain routes to (`fc3-domain`, `customDomain`) is served over HTTP. Functions of other
 * runtimes than Node.js are skipped with a warning, as are what it does not apply (actions, flow,
 * layers...); unknown keys of the async config and HTTP triggers, and misspelt props, get one too.
 * Throws an `FcAsyncError` with code `InvalidConfig`, whose message names the file and the
 * problem on one line, for a malformed file.
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
  checkServerlessConfigOptions(options);
  const doc = await readServerlessDoc(path);
  // Which values expressions produced: the checks below name those by their expression, never quote them.
  const origins = new Map<unknown, string>();
  try {
    return withValueOrigins(origins, () => readFunctions(path, options, doc, origins));
  } catch (error) {
    throw blameSource(error, path, doc.sources);
  }
}

/** The functions of a file read by {@link readServerlessDoc}. */
function readFunctions(
  path: string,
  options: ServerlessConfigOptions,
  { root, dotenv }: { root: Obj; dotenv: Record<string, string> },
  origins: Map<unknown, string>,
): ServerlessConfig {
  const resources = root.resources ?? root.services;
  const section = root.resources !== undefined ? 'resources' : 'services';
  if (!isObject(resources)) {
    throw configError(path, 'has no `resources` mapping (Serverless Devs 3) or `services` mapping (Serverless Devs 1)');
  }
  const dir = dirname(resolve(path));
  const ctx: VarContext = {
    root,
    env: { ...dotenv, ...(options.env ?? process.env) },
    accountId: options.accountId ?? '0',
    region: options.region ?? 'cn-hangzhou',
    dir,
    unresolved: new Set(),
    origins,
  };
  const functions: FunctionSpec[] = [];
  const skipped: string[] = [];
  const keyNotes: string[] = [];
  const served: ServedResource[] = [];
  // The fc3-domain resources, read once every function is known: their routes may come first.
  const domains: { where: string; resource: Obj; self: ThisContext }[] = [];
  const routed = new Map<string, RouteMethods>();
  for (const [key, resource] of Object.entries(resources)) {
    const where = `${section}.${key}`;
    if (!isObject(resource)) throw configError(path, `${where} must be a mapping`);
    const self: ThisContext = { name: key, access: resource.access ?? root.access, props: resource.props };
    const component = resolved(path, where, resource.component, ctx, self);
    const kind = componentKind(component);
    if (!kind) {
      if (isDomainComponent(component)) domains.push({ where, resource, self: { ...self, component } });
      else if (namesFunction(resource.props))
        skipped.push(`${key}: skipped: component ${String(component)} is not fc3 or fc`);
      continue;
    }
    if (!isObject(resource.props)) throw configError(path, `${where}.props must be a mapping`);
    const props = resolved(path, `${where}.props`, resource.props, ctx, { ...self, component }) as Obj;
    const fn = kind === 'fc3' ? fc3Function(props) : fc2Function(path, props, `${where}.props`);
    const spec =
      kind === 'fc3'
        ? readFc3(path, dir, ctx.region, fn, `${where}.props`)
        : readFc2(path, dir, ctx.region, props, fn, `${where}.props`);
    if (typeof spec === 'string') {
      skipped.push(`${key}: ${spec}`);
      continue;
    }
    if (functions.some((f) => f.name === spec.name)) {
      throw configError(path, `${where}: the function name ${spec.name} is used twice`);
    }
    const notes = kind === 'fc3' ? fc3KeyNotes : fc2KeyNotes;
    keyNotes.push(...notes(path, spec.name, props, `${where}.props`));
    functions.push(spec);
    served.push({ key, resource, fn });
    if (kind === 'fc3' && isObject(fn.customDomain)) {
      const route = fn.customDomain.route;
      const at = `${where}.props.customDomain.route`;
      addRoute(routed, spec.name, isObject(route) ? routeMethods(path, route, at) : undefined);
    }
  }
  for (const { where, resource, self } of domains) {
    const config = isObject(resource.props) ? resource.props.routeConfig : undefined;
    const routes = isObject(config) ? config.routes : undefined;
    if (!Array.isArray(routes)) continue;
    routes.forEach((route, index) => {
      if (!isObject(route)) return;
      const at = `${where}.props.routeConfig.routes[${index}]`;
      // Only what names the function and its methods: the rest (certificates read by file()) is the domain's.
      const own = resolved(path, at, { functionName: route.functionName, methods: route.methods }, ctx, self) as Obj;
      if (typeof own.functionName === 'string') addRoute(routed, own.functionName, routeMethods(path, own, at));
    });
  }
  for (const spec of functions) {
    // FC 3.0 serves a custom domain's requests to a function without an HTTP trigger (the web
    // framework templates have none); FC 2.0 routes them only to HTTP functions, which have one.
    if (spec.style !== 'fc3' || spec.http || !routed.has(spec.name)) continue;
    const methods = routed.get(spec.name);
    spec.http = methods ? { methods } : {};
  }
  if (functions.length === 0) {
    const why = skipped.length > 0 ? ` (${skipped.join('; ')})` : '';
    throw configError(path, `defines no Node.js function of the fc3 or fc component${why}`);
  }
  const warnings = [...skipped, ...keyNotes];
  const notice = notAppliedNotice(root, served);
  if (notice) warnings.push(notice);
  for (const expression of ctx.unresolved) warnings.push(`${expression} is not resolved locally and kept as written`);
  return { file: path, functions, warnings };
}

/** `value` with its variables resolved; a {@link VarError} becomes an `InvalidConfig` naming `where`. */
function resolved(file: string, where: string, value: unknown, ctx: VarContext, self: ThisContext): unknown {
  try {
    return resolveVars(value, ctx, self);
  } catch (error) {
    if (error instanceof VarError) throw configError(file, `${where}: ${error.message}`);
    throw error;
  }
}

/** Props that name a function (FC 3.0 `functionName`, FC 2.0 `function.name`): worth a notice when skipped. */
function namesFunction(props: unknown): boolean {
  return isObject(props) && (props.functionName !== undefined || isObject(props.function));
}

/** `fc3-domain`, `devsapp/fc3-domain`, `fc3-domain@0.0.6`: FC 3.0's custom domain component. */
function isDomainComponent(component: unknown): boolean {
  return typeof component === 'string' && /^(?:[\w.-]+\/)?fc3-domain(?:@[\w.^~-]+)?$/.test(component.trim());
}

/** The methods of the custom domain routes to a function: undefined when one of them takes any. */
type RouteMethods = string[] | undefined;

/**
 * The methods of one custom domain route (an fc3-domain's `routeConfig.routes[i]`, an fc3
 * function's `customDomain.route`), in capitals: undefined (any) when it names none (or `[]`).
 */
function routeMethods(file: string, route: Obj, where: string): RouteMethods {
  const methods = route.methods;
  if (methods === undefined || methods === null || (Array.isArray(methods) && methods.length === 0)) return undefined;
  return methodList(file, methods, `${where}.methods`);
}

/** Adds one more route to function `name`'s: the methods of all of them, any when one takes any. */
function addRoute(routed: Map<string, RouteMethods>, name: string, methods: RouteMethods): void {
  const before = routed.has(name) ? routed.get(name) : [];
  routed.set(name, before === undefined || methods === undefined ? undefined : [...new Set([...before, ...methods])]);
}

/** `fc3`, `devsapp/fc3`, `fc3@0.1.0` → fc3; `fc`, `devsapp/fc` → fc; anything else is not ours. */
function componentKind(component: unknown): 'fc3' | 'fc' | undefined {
  if (typeof component !== 'string') return undefined;
  const m = /^(?:[\w.-]+\/)?(fc3|fc)(?:@[\w.^~-]+)?$/.exec(component.trim());
  return m ? (m[1] as 'fc3' | 'fc') : undefined;
}

/** The function props of an fc3 resource: its props, with a nested `function` mapping merged in. */
function fc3Function(props: Obj): Obj {
  return isObject(props.function) ? { ...props, ...props.function } : props;
}

function fc2Function(file: string, props: Obj, where: string): Obj {
  if (!isObject(props.function)) throw configError(file, `${where}.function must be a mapping`);
  return props.function;
}

function readFc3(file: string, dir: string, region: string, props: Obj, where: string): FunctionSpec | string {
  const trigger = httpTrigger(file, props.triggers, `${where}.triggers`, 'triggerType', 'triggerConfig');
  return checkFunction(file, dir, where, {
    name: props.functionName,
    code: props.code,
    handler: props.handler,
    runtime: props.runtime,
    command: startCommand(props),
    region: props.region ?? region,
    memorySize: props.memorySize,
    timeout: props.timeout,
    environmentVariables: props.environmentVariables,
    http: trigger,
    style: 'fc3',
    asyncConfig: readAsyncConfig(file, props.asyncInvokeConfig, `${where}.asyncInvokeConfig`),
    logConfig: readLogConfig(file, props.logConfig, `${where}.logConfig`),
    props,
  });
}

function readFc2(file: string, dir: string, region: string, props: Obj, fn: Obj, where: string): FunctionSpec | string {
  const trigger = httpTrigger(file, props.triggers, `${where}.triggers`, 'type', 'config');
  return checkFunction(file, dir, `${where}.function`, {
    name: fn.name,
    code: fn.codeUri,
    handler: fn.handler,
    runtime: fn.runtime,
    command: startCommand(fn),
    region: props.region ?? region,
    memorySize: fn.memorySize,
    timeout: fn.timeout,
    environmentVariables: fn.environmentVariables,
    http: trigger,
    style: 'fc2',
    serviceName: isObject(props.service) ? props.service.name : undefined,
    asyncConfig: readFc2AsyncConfig(file, fn.asyncConfiguration, `${where}.function.asyncConfiguration`),
    logConfig: readLogConfig(
      file,
      isObject(props.service) ? props.service.logConfig : undefined,
      `${where}.service.logConfig`,
    ),
    props: fn,
  });
}
