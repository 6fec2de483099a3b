import { extname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigFileProblem, readConfigText, yamlProblem } from './config-file.js';

/**
 * What the variables of one `s.yaml` resolve against. The subset of Serverless Devs variables
 * that `fc-async dev` resolves: `${vars.a.b}`, `${env('NAME')}`, `${env('NAME', 'default')}`,
 * `${env.NAME}`, `${config('AccountID')}`, `${config('Region')}`, `${path('./x')}`,
 * `${file('./x.json')}`, `${json('...')}`, `${this.name}`, `${this.props.x}`,
 * `${resources.<name>.props.x}` and `${<name>.props.x}`. Anything else is left as written and
 * reported in `unresolved`.
 */
export interface VarContext {
  root: Record<string, unknown>;
  env: Record<string, string | undefined>;
  accountId: string;
  region: string;
  /** The folder of the s.yaml: `${path()}` and `${file()}` are relative to it. */
  dir: string;
  unresolved: Set<string>;
  /** Expressions left to evaluate: references that expand exponentially run out of it. */
  budget?: number;
  /**
   * Each value an expression produced (a leaf of a file's or json()'s too), with the text it was
   * written as (`${env(DBPASS)}`): an error about such a value names that text, never the value,
   * which may be a secret (see `shown`).
   */
  origins?: Map<unknown, string>;
}

/** A `${...}` reference that refers to itself, expands too far, or names a file that cannot be read. */
export class VarError extends Error {}

/** What `${this.x}` reads: the resource whose props are being resolved. */
export interface ThisContext {
  name: string;
  access?: unknown;
  component?: unknown;
  props?: unknown;
}

/** Thrown inside the parser for an expression it cannot read: the expression is then kept as written. */
const UNREADABLE = Symbol('unreadable');

/** A reference: names joined by dots, list items as `[1]` (or `.1`). */
const NAME = /^[A-Za-z_$][\w$-]*(?:\.[\w$-]+|\[\d+\])*/;
const WHOLE_NAME = new RegExp(`${NAME.source}$`);
/** A decimal number as YAML writes one (`60`, `-1`, `0.5`). */
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/**
 * `text` as a number when it is one written as JavaScript writes it back (`60`, `0.5`); else
 * `undefined`: `1.10`, `10.0` or an id of 20 digits would come back other text (`1.1`, `10`, a
 * rounded id), and they stay text, whether in a number field or inside a string.
 */
function exactNumber(text: string): number | undefined {
  return NUMBER.test(text) && String(Number(text)) === text ? Number(text) : undefined;
}

/** How deep a walk may go through values that are expressions themselves (`a: ${vars.b}`, `b: ${vars.a}`). */
const MAX_WALK_NESTING = 8;
let walkNesting = 0;

/** How many expressions one file may evaluate: references that expand exponentially run out of it. */
export const MAX_EXPANSIONS = 100_000;

/** Counts one expression evaluated against the file's budget; a {@link VarError} once it is spent. */
export function spendExpansion(ctx: VarContext, expression: string): void {
  ctx.budget = (ctx.budget ?? MAX_EXPANSIONS) - 1;
  if (ctx.budget < 0) {
    throw new VarError(`its references expand to more than ${MAX_EXPANSIONS} values (at \${${expression}})`);
  }
}

/**
 * Where an expression's value came from: `document` when it is the file's own (a reference), to
 * be resolved in turn; `owner` the resource that value belongs to, what its own `${this.x}` reads.
 */
export interface ValueOrigin {
  document: boolean;
  owner?: ThisContext | undefined;
}

/**
 * The value at `path` under `value`, which belongs to `self` (the resource its `${this.x}`
 * reads). A value on the way that is an expression of the file's own (`cfg:
 * ${file('./cfg.json')}`, read as `${vars.cfg.greeting}`) is evaluated to walk on into it.
 */
function walk(
  value: unknown,
  path: string[],
  ctx: VarContext,
  self: ThisContext | undefined,
  origin: ValueOrigin,
): unknown {
  let current = value;
  let owner = self;
  for (const key of path) {
    if (typeof current === 'string' && current.startsWith('${') && current.endsWith('}')) {
      if (++walkNesting > MAX_WALK_NESTING) {
        walkNesting = 0;
        throw new VarError(`${current} refers to itself (references nest deeper than ${MAX_WALK_NESTING})`);
      }
      const inner = current.slice(2, -1).trim();
      const from: ValueOrigin = { document: false };
      try {
        spendExpansion(ctx, inner);
        current = evaluateExpression(inner, ctx, owner, from);
      } finally {
        walkNesting = Math.max(0, walkNesting - 1);
      }
      // Into a file's, an environment variable's or a call's value: data from here on, never expanded.
      if (!from.document) origin.document = false;
      // Into another resource's value (`${resources.b.props}`): its `${this.x}` read b from here on.
      else owner = from.owner;
    }
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  origin.owner = owner;
  return current;
}

/** `${file('x')}`: YAML and JSON files are parsed, others read as text, relative to the s.yaml. */
function readVarFile(ctx: VarContext, name: unknown): unknown {
  const file = resolve(ctx.dir, String(name));
  let text: string;
  try {
    text = readConfigText(file);
  } catch (cause) {
    if (cause instanceof ConfigFileProblem) throw new VarError(`file('${String(name)}') ${cause.message}`);
    throw new VarError(`file('${String(name)}') cannot be read (${(cause as { code?: string }).code ?? cause})`);
  }
  try {
    const ext = extname(file);
    if (ext === '.json') return JSON.parse(text);
    return ext === '.yaml' || ext === '.yml' ? parse(text, { merge: true }) : text;
  } catch (cause) {
    // The file may hold secrets: neither the yaml library's code frame nor JSON's quote of the text is shown.
    const message = (cause as Error).message;
    const problem = / is not valid JSON$/.test(message)
      ? 'unexpected text'
      : yamlProblem(message.split(/\r?\n/)[0] as string);
    throw new VarError(`file('${String(name)}') is not valid ${extname(file).slice(1)}: ${problem}`);
  }
}

/**
 * `args` are the call's arguments, `written` says each for an error: a literal as it is, any other
 * as the expression that gave it (`the value of env("TOKEN")`): that value may be a secret.
 */
function call(name: string, args: unknown[], written: string[], ctx: VarContext): unknown {
  const [first, second] = args;
  switch (name) {
    case 'env': {
      const value = ctx.env[String(first)];
      if (value === undefined || (value === '' && second !== undefined)) return second;
      // A number as the default (`env('TIMEOUT', 60)`) asks for a number: a variable that reads
      // as one is taken as one, so that `timeout: ${env('TIMEOUT', 60)}` is a number either way;
      // one that would read back other text (`1.10`) stays as it is ({@link exactNumber}).
      return typeof second === 'number' ? (exactNumber(value) ?? value) : value;
    }
    case 'config':
      return first === 'AccountID' ? ctx.accountId : first === 'Region' ? ctx.region : undefined;
    case 'path':
      return typeof first === 'string' && first !== '' ? resolve(ctx.dir, first) : undefined;
    case 'file':
      return readVarFile(ctx, first);
    case 'json':
      if (typeof first !== 'string') return first;
      try {
        return JSON.parse(first);
      } catch {
        throw new VarError(`json() got text that is not JSON: ${written[0]}`);
      }
    default:
      return undefined;
  }
}

/** What `${this.x}` reads inside resource `key`: its name, access, component and props as written. */
function resourceThis(ctx: VarContext, resource: unknown, key: string): ThisContext | undefined {
  if (resource === null || typeof resource !== 'object') return undefined;
  const { access, component, props } = resource as Record<string, unknown>;
  return { name: key, access: access ?? ctx.root.access, component, props };
}

/** `path` under resource `key`, read as that resource's own value (its `${this.x}` read it). */
function walkResource(
  resources: Record<string, unknown> | undefined,
  key: string | undefined,
  path: string[],
  ctx: VarContext,
  origin: ValueOrigin,
): unknown {
  if (key === undefined || !resources || !Object.hasOwn(resources, key)) return undefined;
  const resource = resources[key];
  return walk(resource, path, ctx, resourceThis(ctx, resource, key), origin);
}

function reference(
  name: string,
  ctx: VarContext,
  self: ThisContext | undefined,
  origin: ValueOrigin = { document: false },
): unknown {
  const [head, ...rest] = name.replace(/\[(\d+)\]/g, '.$1').split('.');
  if (head === 'env' && rest.length === 1) return ctx.env[rest[0] as string];
  if (head === 'vars') return walk(ctx.root.vars, rest, ctx, self, origin);
  if (head === 'this') return walk(self, rest, ctx, self, origin);
  const resources = (ctx.root.resources ?? ctx.root.services) as Record<string, unknown> | undefined;
  if (head === 'resources' || head === 'services') return walkResource(resources, rest[0], rest.slice(1), ctx, origin);
  if (head !== undefined && rest[0] === 'props') return walkResource(resources, head, rest, ctx, origin);
  return undefined;
}

/**
 * Evaluates one `${...}` expression: a reference (`vars.a.b`, `this.name`, `<resource>.props.x`),
 * a quoted string, or a call of `env`, `config`, `path`, `file` or `json` whose arguments are
 * expressions themselves (`env('A', path('../'))`). `undefined` when it cannot be evaluated here.
 * `origin.document` tells whether the value is the file's own (a reference), to be resolved in turn.
 */
export function evaluateExpression(
  source: string,
  ctx: VarContext,
  self: ThisContext | undefined,
  origin: ValueOrigin = { document: false },
): unknown {
  origin.document = false;
  origin.owner = self;
  let i = 0;
  const space = () => {
    while (source[i] === ' ' || source[i] === '\t') i++;
  };
  /** Whether the last value read was a literal (quoted, or bare text naming nothing). */
  let literal = false;
  const value = (argument: boolean): unknown => {
    space();
    literal = false;
    const quote = source[i];
    if (quote === "'" || quote === '"') {
      const end = source.indexOf(quote, i + 1);
      if (end < 0) throw UNREADABLE;
      const text = source.slice(i + 1, end);
      i = end + 1;
      literal = true;
      return text;
    }
    const start = i;
    const name = NAME.exec(source.slice(i))?.[0];
    if (name) {
      i += name.length;
      space();
      if (source[i] === '(') return callAt(name);
      if (!argument) {
        // A value of the file itself (vars, this, resources) may hold references of its own; an
        // environment variable's value, a file's or a call's is data, taken as it is.
        origin.document = !(name === 'env' || name.startsWith('env.'));
        return reference(name, ctx, self, origin);
      }
    }
    if (!argument) throw UNREADABLE;
    // A bare argument, as older files write them: `env(SECRET_ID)`, `path(../..)`.
    i = start;
    const text = (/^[^,()'"]*/.exec(source.slice(i))?.[0] ?? '').trim();
    if (text === '') throw UNREADABLE;
    i = source.indexOf(text, i) + text.length;
    const named = WHOLE_NAME.test(text) ? reference(text, ctx, self) : undefined;
    literal = named === undefined;
    // A bare number is a number (`env('RETRIES', 2)`), as YAML reads one ({@link exactNumber}).
    return named ?? exactNumber(text) ?? text;
  };
  const callAt = (name: string): unknown => {
    i++;
    const args: unknown[] = [];
    const written: string[] = [];
    space();
    while (source[i] !== ')') {
      const start = i;
      const arg = value(true);
      args.push(arg);
      written.push(literal ? String(arg).slice(0, 64) : `the value of ${source.slice(start, i).trim()}`);
      space();
      if (source[i] === ',') i++;
      else if (source[i] !== ')') throw UNREADABLE;
    }
    i++;
    // A call's value is never a literal: it is data from outside the file (or computed from it).
    literal = false;
    return call(name, args, written, ctx);
  };
  try {
    const result = value(false);
    space();
    return i === source.length ? result : undefined;
  } catch (error) {
    if (error === UNREADABLE) return undefined;
    throw error;
  }
}
