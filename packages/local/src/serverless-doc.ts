import { dirname, join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigFileProblem, readConfigText, yamlProblem } from './config-file.js';
import { isCustomRuntime } from './custom-runtime-spec.js';
import { configError, isObject } from './errors.js';

type Obj = Record<string, unknown>;

/** How many files an `extend` chain may read. */
const MAX_EXTENDS = 8;

async function readYaml(path: string): Promise<Obj> {
  let text: string;
  try {
    text = readConfigText(path);
  } catch (cause) {
    if (cause instanceof ConfigFileProblem) throw configError(path, cause.message);
    const code = (cause as { code?: string }).code;
    throw configError(path, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(cause)})`);
  }
  // `merge`: `<<: *anchor` merge keys, which Serverless Devs (js-yaml) reads too.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: true });
  const first = doc.errors[0];
  if (first) throw configError(path, `invalid YAML: ${yamlProblem(first.message)}`);
  const root: unknown = doc.toJS();
  if (!isObject(root)) throw configError(path, 'expected a mapping at the top level');
  return root;
}

function define(target: Obj, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Serverless Devs' deep merge (extend2): mappings merge key by key, anything else (lists
 * included) is replaced by the value that comes later.
 */
function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isObject(base) || !isObject(over)) return over;
  const out: Obj = {};
  for (const [k, v] of Object.entries(base)) define(out, k, v);
  for (const [k, v] of Object.entries(over)) define(out, k, deepMerge(Object.hasOwn(base, k) ? base[k] : undefined, v));
  return out;
}

/** `extend: s.yaml`: this file deep-merged over the file it extends (Serverless Devs 3 environments). */
async function withExtend(path: string, root: Obj, seen: string[]): Promise<Obj> {
  if (root.extend === undefined) return root;
  const { extend, ...rest } = root;
  if (typeof extend !== 'string' || extend === '') {
    throw configError(path, `extend must be the path of the s.yaml this file extends, got ${JSON.stringify(extend)}`);
  }
  const base = resolve(dirname(path), extend);
  if (seen.includes(base)) {
    throw configError(path, `extend ${extend} leads back to ${relative(dirname(path), base) || base} (a loop)`);
  }
  if (seen.length >= MAX_EXTENDS)
    throw configError(path, `extend ${extend}: more than ${MAX_EXTENDS} files extend one another`);
  let parent: Obj;
  try {
    parent = await withExtend(base, await readYaml(base), [...seen, base]);
  } catch (error) {
    // The problem is in (or beyond) the extended file: say which `extend` led there.
    throw configError(path, `extend ${extend}: ${(error as Error).message}`);
  }
  return deepMerge(parent, rest) as Obj;
}

/** `KEY=value` lines of a `.env` file (`export`, quotes and `#` comments as dotenv reads them). */
function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2] as string;
    const quoted = /^(['"`])([\s\S]*)\1$/.exec(value);
    if (quoted) value = quoted[1] === '"' ? (quoted[2] as string).replace(/\\n/g, '\n') : (quoted[2] as string);
    else value = value.replace(/\s+#.*$/, '');
    define(out, m[1] as string, value);
  }
  return out;
}

async function dotEnv(dir: string): Promise<Record<string, string>> {
  const path = join(dir, '.env');
  try {
    return parseDotEnv(readConfigText(path));
  } catch (cause) {
    if (cause instanceof ConfigFileProblem) throw configError(path, cause.message);
    const code = (cause as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return {};
    throw configError(path, `cannot be read (${code ?? String(cause)})`);
  }
}

/**
 * `extend: { name, ignore }` of a resource: the props of the top-level `template` it names,
 * without the `ignore`d keys, with the resource's own props merged over them.
 */
function withTemplates(path: string, root: Obj, section: string): Obj {
  const resources = root[section];
  if (!isObject(resources)) return root;
  const templates = root.template;
  const out: Obj = {};
  for (const [key, resource] of Object.entries(resources)) {
    if (!isObject(resource) || resource.extend === undefined) {
      define(out, key, resource);
      continue;
    }
    const where = `${section}.${key}.extend`;
    const { extend, ...rest } = resource;
    if (!isObject(extend) || typeof extend.name !== 'string') {
      throw configError(path, `${where} must be a mapping with the \`name\` of a template of \`template\``);
    }
    const template = isObject(templates) && Object.hasOwn(templates, extend.name) ? templates[extend.name] : undefined;
    if (!isObject(template)) {
      throw configError(path, `${where}.name: no template ${extend.name} in the top-level \`template\` mapping`);
    }
    const ignore = Array.isArray(extend.ignore) ? extend.ignore.map(String) : [];
    const kept = Object.fromEntries(Object.entries(template).filter(([k]) => !ignore.includes(k)));
    define(out, key, { ...rest, props: deepMerge(kept, rest.props ?? {}) });
  }
  return { ...root, [section]: out };
}

/**
 * Reads an `s.yaml` as Serverless Devs would before resolving variables: YAML merge keys, the
 * file it `extend`s, resource templates (`template` + `extend.name`), and the `.env` beside it.
 * Throws `InvalidConfig` naming the file and the problem.
 */
export async function readServerlessDoc(path: string): Promise<{ root: Obj; dotenv: Record<string, string> }> {
  const own = await readYaml(path);
  const root = await withExtend(path, own, [resolve(path)]);
  const section = root.resources !== undefined ? 'resources' : 'services';
  return { root: withTemplates(path, root, section), dotenv: await dotEnv(dirname(resolve(path))) };
}

/** A function `fc-async dev` serves: its resource key, the resource, and its function props. */
export interface ServedResource {
  key: string;
  resource: Obj;
  fn: Obj;
}

/** What the file sets that `fc-async dev` does not run or apply, as one notice, or undefined. */
export function notAppliedNotice(root: Obj, served: readonly ServedResource[]): string | undefined {
  const found: string[] = [];
  const names = (value: unknown) => (isObject(value) ? Object.keys(value).join(', ') : '');
  if (isObject(root.actions)) found.push(`actions (${names(root.actions)})`);
  for (const { key, resource } of served) {
    const actions = resource.actions ?? resource.hooks;
    if (isObject(actions)) found.push(`actions of ${key} (${names(actions)})`);
  }
  if (root.flow !== undefined) found.push('flow (every function is served at once)');
  if (typeof root.env === 'string') found.push(`env ${root.env} (the values of this file are used)`);
  for (const field of ['instanceLifecycleConfig', 'initializer', 'layers']) {
    // A custom runtime's lifecycle hooks are run (POST /initialize, GET /pre-stop).
    const keys = served
      .filter(({ fn }) => fn[field] !== undefined && fn[field] !== null)
      .filter(({ fn }) => field === 'layers' || !isCustomRuntime(fn.runtime))
      .map(({ key }) => key);
    if (keys.length > 0) found.push(`${field} of ${keys.join(', ')}`);
  }
  return found.length > 0 ? `not run or applied locally: ${found.join('; ')}` : undefined;
}
