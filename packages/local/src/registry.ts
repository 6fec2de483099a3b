import type { LocalFunction } from './function.js';

/** `scheme://authority` at the start of an absolute-form request target; group 1 is the authority. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;

/**
 * The functions of one emulator, and how a trigger request finds its function:
 * - one HTTP function: every path of the trigger port is that function's;
 * - several: `/<function>/rest` (the prefix is removed before the function sees the path), or a
 *   `Host` of `<function>.localhost` (any `<function>.<domain>`), path unchanged.
 */
export class FunctionRegistry {
  readonly byName: ReadonlyMap<string, LocalFunction>;
  readonly http: readonly LocalFunction[];
  /** HTTP functions by lower-cased name: a host name is case-insensitive, and browsers lower-case it. */
  private readonly httpByLowerName: ReadonlyMap<string, LocalFunction>;
  /** `Host` header → the HTTP function its first label names, or null (a few hosts at most). */
  private readonly hosts = new Map<string, LocalFunction | null>();
  /** The last `Host` routed, and its function: comparing beats hashing the parser's new string. */
  private lastHost = '';
  private lastFn: LocalFunction | null = null;

  constructor(functions: readonly LocalFunction[]) {
    this.byName = new Map(functions.map((f) => [f.spec.name, f]));
    this.http = functions.filter((f) => f.spec.http);
    this.httpByLowerName = new Map(this.http.map((f) => [f.spec.name.toLowerCase(), f]));
  }

  get all(): LocalFunction[] {
    return [...this.byName.values()];
  }

  /** The path prefix of an HTTP function on the trigger port: `/` alone, else `/<name>/`. */
  prefix(fn: LocalFunction): string {
    return this.http.length === 1 ? '/' : `/${fn.spec.name}/`;
  }

  /**
   * The function a trigger request addresses, and the URL it sees. An absolute-form target
   * (`GET http://host/path`, RFC 9112 section 3.2.2) counts as its path, with its authority as the host.
   */
  route(host: string | undefined, url: string): { fn: LocalFunction; url: string } | undefined {
    if (this.http.length === 0) return undefined;
    if (url.charCodeAt(0) !== 47 /* / */) {
      const absolute = ABSOLUTE_FORM.exec(url);
      if (absolute) {
        host = absolute[1] || host;
        const rest = url.slice(absolute[0].length);
        url = rest.charCodeAt(0) === 47 ? rest : `/${rest}`;
      }
    }
    const named = host === undefined ? null : this.byHost(host);
    if (named) return { fn: named, url };
    if (this.http.length === 1) return { fn: this.http[0] as LocalFunction, url };
    const end = url.slice(1).search(/[/?]/);
    const segment = end < 0 ? url.slice(1) : url.slice(1, end + 1);
    const fn = this.byName.get(segment);
    if (!fn?.spec.http) return undefined;
    const rest = end < 0 ? '' : url.slice(end + 1);
    return { fn, url: rest.startsWith('/') ? rest : `/${rest}` };
  }

  /**
   * The HTTP function a `Host` names by its first label (`<function>.localhost:9000`), or null; the
   * label matches the name in any case (`videoTranscode` is `videotranscode.localhost` in a browser).
   */
  private byHost(host: string): LocalFunction | null {
    if (host === this.lastHost) return this.lastFn;
    let fn = this.hosts.get(host);
    if (fn === undefined) {
      const hostname = host.replace(/:\d+$/, '');
      const dot = hostname.indexOf('.');
      const label = dot > 0 ? hostname.slice(0, dot) : '';
      const exact = this.byName.get(label);
      fn = (exact?.spec.http ? exact : this.httpByLowerName.get(label.toLowerCase())) ?? null;
      if (this.hosts.size >= 64) this.hosts.clear();
      this.hosts.set(host, fn);
    }
    this.lastHost = host;
    this.lastFn = fn;
    return fn;
  }
}
