import { evaluateExpression, type ThisContext, type VarContext, VarError } from './yaml-expr.js';

export { type ThisContext, type VarContext, VarError } from './yaml-expr.js';

/** How many expressions one file may evaluate, and how deep references may nest. */
const MAX_EXPANSIONS = 100_000;
const MAX_DEPTH = 8;

const EXPRESSION = /\$\{([^{}]+)\}/g;
/** An `s init` placeholder (`{{ functionName }}`) left in a template that was copied, not initialised. */
const PLACEHOLDER = /\{\{\s*[\w.-]+\s*\}\}/;

/**
 * One expression's value, resolved in turn when it is the file's own (`vars`, `this`,
 * `resources`); an environment variable, a file or a call gives data, never read for `${}`
 * (a secret holding `${` is neither expanded nor reported).
 */
function evaluate(expression: string, ctx: VarContext, self: ThisContext | undefined, depth: number): unknown {
  ctx.budget = (ctx.budget ?? MAX_EXPANSIONS) - 1;
  if (ctx.budget < 0) {
    throw new VarError(`its references expand to more than ${MAX_EXPANSIONS} values (at \${${expression}})`);
  }
  const origin = { document: false };
  const result = evaluateExpression(expression.trim(), ctx, self, origin);
  return origin.document && result !== undefined ? resolveVars(result, ctx, self, depth + 1) : result;
}

function resolveString(value: string, ctx: VarContext, self: ThisContext | undefined, depth: number): unknown {
  const placeholder = PLACEHOLDER.exec(value);
  if (placeholder) ctx.unresolved.add(placeholder[0]);
  if (!value.includes('${')) return value;
  if (depth > MAX_DEPTH) throw new VarError(`${value} refers to itself (references nest deeper than ${MAX_DEPTH})`);
  const whole = /^\$\{([^{}]+)\}$/.exec(value);
  if (whole) {
    const result = evaluate(whole[1] as string, ctx, self, depth);
    if (result === undefined) {
      ctx.unresolved.add(value);
      return value;
    }
    return result;
  }
  let matched = false;
  const out = value.replace(EXPRESSION, (match, expression: string) => {
    matched = true;
    const result = evaluate(expression, ctx, self, depth);
    if (result === undefined || (typeof result === 'object' && result !== null)) {
      ctx.unresolved.add(match);
      return match;
    }
    return String(result);
  });
  // `${json('{"a":1}')}`: braces inside an expression are beyond this reader; say so rather than keep it silently.
  if (!matched) ctx.unresolved.add(value);
  return out;
}

/**
 * Resolves the variables in one value (recursively for objects and arrays). A string that is
 * exactly one expression takes the expression's value and type; otherwise values are spliced
 * in as text. `self` is what `${this.x}` reads. Throws a {@link VarError} for a reference to
 * itself, one that expands exponentially, or a `${file()}` that cannot be read.
 */
export function resolveVars(value: unknown, ctx: VarContext, self?: ThisContext, depth = 0): unknown {
  if (typeof value === 'string') return resolveString(value, ctx, self, depth);
  if (Array.isArray(value)) return value.map((v) => resolveVars(v, ctx, self, depth));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, {
        value: resolveVars(v, ctx, self, depth),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}
