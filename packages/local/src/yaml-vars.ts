/**
 * The subset of Serverless Devs variables that `fc-async dev` resolves in `s.yaml`:
 * `${vars.a.b}`, `${env(NAME)}`, `${env('NAME', 'default')}`, `${env.NAME}`,
 * `${config('AccountID')}`, `${config('Region')}`, `${this.props.x}`, `${resources.<name>.props.x}`
 * and `${<name>.props.x}`. Anything else is left as written and reported in `unresolved`.
 */
export interface VarContext {
  root: Record<string, unknown>;
  env: Record<string, string | undefined>;
  accountId: string;
  region: string;
  unresolved: Set<string>;
  /** Expressions left to evaluate: references that expand exponentially run out of it. */
  budget?: number;
}

/** A `${...}` reference that refers to itself, or expands past {@link MAX_EXPANSIONS}. */
export class VarError extends Error {}

/** How many expressions one file may evaluate, and how deep references may nest. */
const MAX_EXPANSIONS = 100_000;
const MAX_DEPTH = 8;

const EXPRESSION = /\$\{([^{}]+)\}/g;
const QUOTED = /^\s*(['"])(.*)\1\s*$/;

function unquote(text: string): string {
  const m = QUOTED.exec(text);
  return m ? (m[2] as string) : text.trim();
}

function walk(value: unknown, path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function evaluate(expression: string, ctx: VarContext, self: Record<string, unknown> | undefined): unknown {
  ctx.budget = (ctx.budget ?? MAX_EXPANSIONS) - 1;
  if (ctx.budget < 0) {
    throw new VarError(`its references expand to more than ${MAX_EXPANSIONS} values (at \${${expression}})`);
  }
  const e = expression.trim();
  const call = /^(env|config)\((.*)\)$/.exec(e);
  if (call) {
    const args = (call[2] as string).split(',').map(unquote);
    if (call[1] === 'env') return ctx.env[args[0] ?? ''] ?? args[1];
    if (args[0] === 'AccountID') return ctx.accountId;
    if (args[0] === 'Region') return ctx.region;
    return undefined;
  }
  const path = e.split('.');
  const [head, ...rest] = path;
  if (head === 'env' && rest.length === 1) return ctx.env[rest[0] as string];
  if (head === 'vars') return walk(ctx.root.vars, rest);
  if (head === 'this') return self ? walk(self, rest) : undefined;
  const resources = (ctx.root.resources ?? ctx.root.services) as Record<string, unknown> | undefined;
  if (head === 'resources' || head === 'services') return walk(resources, rest);
  if (head !== undefined && resources && head in resources && rest[0] === 'props') return walk(resources[head], rest);
  return undefined;
}

/**
 * Resolves the variables in one value (recursively for objects and arrays). A string that is
 * exactly one expression takes the expression's value and type; otherwise values are spliced
 * in as text. Throws a {@link VarError} for a reference to itself or one that expands exponentially.
 */
export function resolveVars(value: unknown, ctx: VarContext, self?: Record<string, unknown>, depth = 0): unknown {
  if (typeof value === 'string') {
    if (depth > MAX_DEPTH && value.includes('${')) {
      throw new VarError(`${value} refers to itself (references nest deeper than ${MAX_DEPTH})`);
    }
    if (!value.includes('${')) return value;
    const whole = /^\$\{([^{}]+)\}$/.exec(value);
    if (whole) {
      const result = evaluate(whole[1] as string, ctx, self);
      if (result === undefined) {
        ctx.unresolved.add(value);
        return value;
      }
      return resolveVars(result, ctx, self, depth + 1);
    }
    return value.replace(EXPRESSION, (match, expression: string) => {
      const result = evaluate(expression, ctx, self);
      if (result === undefined || (typeof result === 'object' && result !== null)) {
        ctx.unresolved.add(match);
        return match;
      }
      return String(resolveVars(result, ctx, self, depth + 1));
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveVars(v, ctx, self, depth));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveVars(v, ctx, self, depth);
    return out;
  }
  return value;
}
