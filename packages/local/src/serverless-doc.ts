import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import * as util from 'node:util';
import { FcAsyncError } from '@fc-async/core';
import { parseDocument } from 'yaml';
import { ConfigFileProblem, readConfigText, yamlProblem } from './config-file.js';
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
  let root: unknown;
  try {
    // An alias's value is shared, not copied, here: the walks that follow copy it (see expandedSize).
    root = doc.toJS({ maxAliasCount: MAX_EXPANDED_VALUES });
  } catch (error) {
    // The yaml library's "Excessive alias count indicates a resource exhaustion attack".
    if (error instanceof ReferenceError) throw configError(path, EXPANDS_TOO_FAR);
    throw error;
  }
  if (!isObject(root)) throw configError(path, 'expected a mapping at the top level');
  const size = expandedSize(root, new Map());
  if (size === Number.POSITIVE_INFINITY) {
    throw configError(path, 'has an alias inside the mapping or list its anchor names (a loop)');
  }
  if (size > MAX_EXPANDED_VALUES) throw configError(path, EXPANDS_TOO_FAR);
  return root;
}

/**
 * The most values an s.yaml may hold with each alias expanded: far above a real file's (a hundred
 * functions sharing `<<: *common` are a few thousand), far below a billion laughs'.
 */
const MAX_EXPANDED_VALUES = 1_000_000;
const EXPANDS_TOO_FAR = `its aliases expand to more than ${MAX_EXPANDED_VALUES} values (anchors nested in anchors?)`;

/**
 * How many values `value` holds with each alias expanded, as the variable walks will copy it; an
 * alias shares its node, so each mapping or list is counted once (`sizes`), and one that holds
 * itself (`a: &a [*a]`) is infinite. Stops counting past {@link MAX_EXPANDED_VALUES}.
 */
function expandedSize(value: unknown, sizes: Map<object, number>): number {
  if (value === null || typeof value !== 'object') return 1;
  const known = sizes.get(value);
  if (known !== undefined) return known;
  sizes.set(value, Number.POSITIVE_INFINITY); // until counted: met again inside itself, a loop
  let size = 1;
  for (const item of Object.values(value)) {
    size += expandedSize(item, sizes);
    if (size > MAX_EXPANDED_VALUES) break;
  }
  sizes.set(value, size);
  return size;
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

/** A file of an `extend` chain, as its path reads from the s.yaml's, and what it holds as written. */
export interface DocSource {
  file: string;
  doc: Obj;
}

/**
 * `extend: s.yaml`: this file deep-merged over the file it extends (Serverless Devs 3
 * environments). `sources` gets each file of the chain, this one first.
 */
async function withExtend(path: string, root: Obj, seen: string[], sources: DocSource[], shown = path): Promise<Obj> {
  sources.push({ file: shown, doc: root });
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
    const shownBase = isAbsolute(extend) ? extend : join(dirname(shown), extend);
    parent = await withExtend(base, await readYaml(base), [...seen, base], sources, shownBase);
  } catch (error) {
    // The problem is in (or beyond) the extended file: say which `extend` led there.
    throw configError(path, `extend ${extend}: ${(error as Error).message}`);
  }
  return deepMerge(parent, rest) as Obj;
}

/** The value at `resources.api.props.triggers[0].triggerType` of `doc`, or undefined. */
function valueAt(doc: unknown, where: string): unknown {
  let value = doc;
  for (const key of where.split(/\.|\[(\d+)\]\.?/).filter((k) => k !== undefined && k !== '')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Obj)[key];
  }
  return value;
}

/**
 * An `InvalidConfig` error about a key of a file that extends others, naming the file the value
 * came from: the first of the chain that sets the key the message starts with (a later file's
 * value replaces an earlier one's). When no file sets it (a key left out, one a template gave),
 * the message lists the files. Other errors are returned as they are.
 *
 * @example
 * ```ts
 * throw blameSource(error, 's.yaml', sources); // base.yaml: resources.api.props.timeout must be...
 * ```
 */
export function blameSource(error: unknown, file: string, sources: readonly DocSource[]): unknown {
  if (sources.length < 2 || !(error instanceof FcAsyncError) || error.code !== 'InvalidConfig') return error;
  if (!error.message.startsWith(`${file}: `)) return error;
  const problem = error.message.slice(file.length + 2);
  const where = /^(?:resources|services)\.[^\s:,;]+/.exec(problem)?.[0];
  if (where === undefined) return error;
  const origin = sources.find((source) => valueAt(source.doc, where) !== undefined);
  if (origin === sources[0]) return error;
  if (origin) return configError(origin.file, problem);
  const others = sources.slice(1).map((source) => source.file);
  return configError(file, `${problem} (from ${file} or a file it extends: ${others.join(', ')})`);
}

/**
 * A `.env` file read as dotenv reads one, for a Node.js without `util.parseEnv` (before 20.12):
 * `export`, `#` comments, a value in quotes (`'`, `"` or backticks, over several lines too) taken
 * without them and what follows dropped, `\n` in double quotes a newline; an unquoted value ends at
 * its first `#`.
 *
 * @example
 * ```ts
 * dotenvParse('A="quoted value" # comment\nB=plain # comment'); // { A: 'quoted value', B: 'plain' }
 * ```
 */
export function dotenvParse(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*)$/.exec(lines[i] as string);
    if (!m) continue;
    const rest = m[2] as string;
    const quote = rest[0];
    let value: string | undefined;
    if (quote === '"' || quote === "'" || quote === '`') {
      // The closing quote may come lines later; none at all: the line is read as unquoted.
      let quoted = rest;
      let close = quoted.indexOf(quote, 1);
      let end = i;
      while (close < 0 && end + 1 < lines.length) {
        quoted += `\n${lines[++end]}`;
        close = quoted.indexOf(quote, 1);
      }
      if (close > 0) {
        value = quoted.slice(1, close);
        if (quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
        i = end;
      }
    }
    define(out, m[1] as string, value ?? rest.replace(/#.*$/, '').trim());
  }
  return out;
}

/** Node's own `.env` reader (20.12 and later), which follows dotenv; undefined on Node 20.11. */
const nodeParseEnv = (util as { parseEnv?: (text: string) => Record<string, string> }).parseEnv;

/** `KEY=value` lines of a `.env` file, read as dotenv (and Node's `--env-file`) read them. */
function parseDotEnv(text: string): Record<string, string> {
  if (!nodeParseEnv) return dotenvParse(text);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(nodeParseEnv(text))) define(out, key, value);
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
 * `sources` lists the file and those it extends, for {@link blameSource}. Throws `InvalidConfig`
 * naming the file and the problem.
 */
export async function readServerlessDoc(
  path: string,
): Promise<{ root: Obj; dotenv: Record<string, string>; sources: DocSource[] }> {
  const own = await readYaml(path);
  const sources: DocSource[] = [];
  const root = await withExtend(path, own, [resolve(path)], sources);
  const section = root.resources !== undefined ? 'resources' : 'services';
  let templated: Obj;
  try {
    templated = withTemplates(path, root, section);
  } catch (error) {
    throw blameSource(error, path, sources);
  }
  return { root: templated, dotenv: await dotEnv(dirname(resolve(path))), sources };
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
  const layered = served.filter(({ fn }) => fn.layers !== undefined && fn.layers !== null).map(({ key }) => key);
  if (layered.length > 0) found.push(`layers of ${layered.join(', ')}`);
  // The initializer and preStop hooks are run; an instance here is never frozen (FC 2.0's preFreeze).
  const frozen = served
    .filter(({ fn }) => isObject(fn.instanceLifecycleConfig) && isObject(fn.instanceLifecycleConfig.preFreeze))
    .map(({ key }) => key);
  if (frozen.length > 0)
    found.push(`instanceLifecycleConfig.preFreeze of ${frozen.join(', ')} (an instance is never frozen here)`);
  return found.length > 0 ? `not run or applied locally: ${found.join('; ')}` : undefined;
}
