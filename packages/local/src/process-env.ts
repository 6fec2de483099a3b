/** A value the emulator set: whose lend it is, and the value to put back when it ends. */
interface Lend {
  readonly owner: object;
  readonly value: string;
  before: string | undefined;
}

/**
 * The lends of each variable set through {@link lendEnv}, oldest first, shared by every emulator of
 * the process (a test suite may run two at once, and the functions of one s.yaml set the same names).
 */
const lends = new Map<string, Lend[]>();

/**
 * Sets `env` in `process.env`, as FC sets a function's variables before its module loads, and
 * returns what takes them back: each variable gets the value it had before (deleted if it had
 * none), or the value of a lend made since and still held. A variable changed by someone else
 * meanwhile is left as they set it. Lends end in any order; ending one twice does nothing.
 *
 * @example
 * ```ts
 * const giveBack = lendEnv({ FC_FUNCTION_NAME: 'api' });
 * await import('./app.mjs'); // reads FC_FUNCTION_NAME at load
 * giveBack(); // FC_FUNCTION_NAME as it was
 * ```
 */
export function lendEnv(env: Readonly<Record<string, string>>): () => void {
  const owner = {};
  for (const [name, value] of Object.entries(env)) {
    const stack = lends.get(name) ?? [];
    lends.set(name, stack);
    stack.push({ owner, value, before: process.env[name] });
    process.env[name] = value;
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    for (const name of Object.keys(env)) giveBack(name, owner);
  };
}

/**
 * Ends `owner`'s lend of `name`. The newest lend puts back the value from before it, unless the
 * variable was changed since (by a test, by the app: theirs now, not the emulator's to undo); an
 * older one hands its own "before" to the lend after it, which was covering its value.
 */
function giveBack(name: string, owner: object): void {
  const stack = lends.get(name);
  const at = stack?.findIndex((l) => l.owner === owner) ?? -1;
  if (!stack || at < 0) return;
  const [lend] = stack.splice(at, 1) as [Lend];
  if (stack.length === 0) lends.delete(name);
  const after = stack[at];
  if (after) {
    // Unless someone set the variable between the two lends: theirs is what `after` puts back.
    if (after.before === lend.value) after.before = lend.before;
    return;
  }
  if (process.env[name] !== lend.value) return;
  if (lend.before === undefined) delete process.env[name];
  else process.env[name] = lend.before;
}
