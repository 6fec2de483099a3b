import type { LocalFunction } from './function.js';

/**
 * The functions of one emulator, and how a trigger request finds its function:
 * - one HTTP function: every path of the trigger port is that function's;
 * - several: `/<function>/rest` (the prefix is removed before the function sees the path), or a
 *   `Host` of `<function>.localhost` (any `<function>.<domain>`), path unchanged.
 */
export class FunctionRegistry {
  readonly byName: ReadonlyMap<string, LocalFunction>;
  readonly http: readonly LocalFunction[];

  constructor(functions: readonly LocalFunction[]) {
    this.byName = new Map(functions.map((f) => [f.spec.name, f]));
    this.http = functions.filter((f) => f.spec.http);
  }

  get all(): LocalFunction[] {
    return [...this.byName.values()];
  }

  /** The path prefix of an HTTP function on the trigger port: `/` alone, else `/<name>/`. */
  prefix(fn: LocalFunction): string {
    return this.http.length === 1 ? '/' : `/${fn.spec.name}/`;
  }

  /** The function a trigger request addresses, and the URL it sees. */
  route(host: string | undefined, url: string): { fn: LocalFunction; url: string } | undefined {
    if (this.http.length === 0) return undefined;
    const hostname = host?.replace(/:\d+$/, '') ?? '';
    const dot = hostname.indexOf('.');
    if (dot > 0) {
      const fn = this.byName.get(hostname.slice(0, dot));
      if (fn?.spec.http) return { fn, url };
    }
    if (this.http.length === 1) return { fn: this.http[0] as LocalFunction, url };
    const end = url.slice(1).search(/[/?]/);
    const segment = end < 0 ? url.slice(1) : url.slice(1, end + 1);
    const fn = this.byName.get(segment);
    if (!fn?.spec.http) return undefined;
    const rest = end < 0 ? '' : url.slice(end + 1);
    return { fn, url: rest.startsWith('/') ? rest : `/${rest}` };
  }
}
