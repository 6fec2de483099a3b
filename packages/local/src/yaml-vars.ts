import {
  evaluateExpression,
  spendExpansion,
  type ThisContext,
  type ValueOrigin,
  type VarContext,
  VarError,
} from './yaml-expr.js';

export { type ThisContext, type VarContext, VarError } from './yaml-expr.js';

/** How deep references may nest. */
const MAX_DEPTH = 8;

/**
 * The `${...}` expressions of `value`, in order: each ends at the first `}` outside quotes and
 * outside braces of its own, so that `${json('{"a":1}')}` and `${env('X', 'a}b')}` are one
 * expression each. An expression never closed ends the scan.
 */
function expressionsIn(value: string): { start: number; end: number; inner: string }[] {
  const found: { start: number; end: number; inner: string }[] = [];
  for (let start = value.indexOf('${'); start >= 0; start = value.indexOf('${', start)) {
    let depth = 0;
    let quote = '';
    let end = -1;
    for (let i = start + 2; i < value.length && end < 0; i++) {
      const c = value[i];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === "'" || c === '"') quote = c;
      else if (c === '{') depth++;
      else if (c === '}') {
        if (depth === 0) end = i;
        else depth--;
      }
    }
    if (end < 0) break;
    found.push({ start, end: end + 1, inner: value.slice(start + 2, end) });
    start = end + 1;
  }
  return found;
}
/** An `s init` placeholder (`{{ functionName }}`) left in a template that was copied, not initialised. */
const PLACEHOLDER = /\{\{\s*[\w.-]+\s*\}\}/;

/**
 * One expression's value, resolved in turn when it is the file's own (`vars`, `this`,
 * `resources`); an environment variable, a file or a call gives data, never read for `${}`
 * (a secret holding `${` is neither expanded nor reported).
 */
function evaluate(expression: string, ctx: VarContext, self: ThisContext | undefined, depth: number): unknown {
  spendExpansion(ctx, expression);
  const origin: ValueOrigin = { document: false };
  const result = evaluateExpression(expression.trim(), ctx, self, origin);
  // A value of another resource's (`${resources.b.props.x}`) is resolved as b's: its `${this.x}` read b.
  return origin.document && result !== undefined ? resolveVars(result, ctx, origin.owner, depth + 1) : result;
}

function resolveString(value: string, ctx: VarContext, self: ThisContext | undefined, depth: number): unknown {
  const placeholder = PLACEHOLDER.exec(value);
  if (placeholder) ctx.unresolved.add(placeholder[0]);
  if (!value.includes('${')) return value;
  if (depth > MAX_DEPTH) throw new VarError(`${value} refers to itself (references nest deeper than ${MAX_DEPTH})`);
  const found = expressionsIn(value);
  const only = found[0];
  if (found.length === 1 && only && only.start === 0 && only.end === value.length) {
    const result = evaluate(only.inner, ctx, self, depth);
    if (result === undefined) {
      ctx.unresolved.add(value);
      return value;
    }
    markOrigin(ctx, result, value);
    return result;
  }
  // An expression never closed: said rather than kept silently.
  if (found.length === 0) ctx.unresolved.add(value);
  let out = '';
  let at = 0;
  for (const { start, end, inner } of found) {
    const match = value.slice(start, end);
    const result = evaluate(inner, ctx, self, depth);
    let text = match;
    if (result === undefined || (typeof result === 'object' && result !== null)) ctx.unresolved.add(match);
    else text = String(result);
    out += value.slice(at, start) + text;
    at = end;
  }
  out += value.slice(at);
  if (out !== value) markOrigin(ctx, out, JSON.stringify(value));
  return out;
}

/**
 * Records `written` as the origin of `value` and, for a mapping or list (a file's, json()'s), of
 * each value in it: an error about any of them names `written`, not the value (see `shown`).
 */
function markOrigin(ctx: VarContext, value: unknown, written: string): void {
  if (!ctx.origins) return;
  const seen = new Set<object>();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || v === undefined) continue;
    ctx.origins.set(v, written);
    if (typeof v === 'object' && !seen.has(v)) {
      seen.add(v);
      for (const item of Object.values(v)) stack.push(item);
    }
  }
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
