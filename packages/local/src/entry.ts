import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FcAsyncError } from '@fc-async/core';
import { isObject } from './errors.js';

/**
 * What an entry module gave: an Express, Koa or Fastify app, an fc-async handler
 * (`createHandler(app)`), or a plain FC handler function. A NestJS app is served as the Express or
 * Fastify app under it.
 *
 * @example
 * ```ts
 * const kind: EntryKind = 'express';
 * ```
 */
export type EntryKind = 'express' | 'koa' | 'fastify' | 'fc-async-handler' | 'fc-handler';

/** The export the emulator serves, and what it is. */
export interface LoadedEntry {
  kind: EntryKind;
  value: unknown;
  exportName: string;
}

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);
const CANDIDATES = ['handler', 'default', 'app'];
let typescriptReady: Promise<string | null | undefined> | undefined;
/**
 * The entries being loaded now, with what they wait for: their import (a top-level await), or
 * their Nest app's `init()`. One whose wait never settles stays here.
 */
const loading = new Map<string, string>();
const IMPORTING = 'a top-level await';

/**
 * The entries whose load has not finished, with what each waits for (`a top-level await`, or
 * ``the Nest app `app`'s init()``), for a word when it takes long or the process ends during it.
 */
export function entriesLoading(): { file: string; waiting: string }[] {
  return [...loading].map(([file, waiting]) => ({ file, waiting }));
}

/**
 * Registers tsx's ESM and CommonJS hooks once, so that TypeScript entries (and what they import)
 * load, compiled with the compiler options of the `tsconfig.json` nearest to the first TypeScript
 * entry (`experimentalDecorators` for NestJS, `paths`), as `tsc` would compile it, rather than with
 * the one of the folder the emulator was started in (tsx's own default). `TSX_TSCONFIG_PATH`, when
 * set, names the file instead, for every entry. Resolves the tsconfig the hooks use (`undefined`:
 * tsx's default), or `null` when `TSX_TSCONFIG_PATH` names it.
 */
function enableTypeScript(entry: string): Promise<string | null | undefined> {
  typescriptReady ??= (async () => {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    const named = process.env.TSX_TSCONFIG_PATH;
    if (named) {
      try {
        cjs.register();
        esm.register();
      } catch (cause) {
        throw unreadTsconfig(`${named} (TSX_TSCONFIG_PATH)`, cause);
      }
      return null;
    }
    const tsconfig = nearestTsconfig(entry);
    registerTsx(esm, cjs, tsconfig);
    return tsconfig;
  })();
  return typescriptReady;
}

type TsxEsm = typeof import('tsx/esm/api');
type TsxCjs = typeof import('tsx/cjs/api');

/** Imports a module (a file URL) under a tsx namespace's hooks. */
type ScopedImport = (href: string) => Promise<unknown>;

/**
 * tsx's CommonJS and ESM hooks, for every module (no `namespace`), or for the modules imported
 * through the returned function and what they import in turn, compiled with `tsconfig`.
 */
function registerTsx(esm: TsxEsm, cjs: TsxCjs, tsconfig: string | undefined, namespace?: string) {
  // tsx's CommonJS hooks read the file from the variable when they are registered, and only then.
  if (tsconfig !== undefined) process.env.TSX_TSCONFIG_PATH = tsconfig;
  try {
    if (namespace) cjs.register({ namespace });
    else cjs.register();
  } catch (cause) {
    // tsx reads the tsconfig (and what it extends) here: its message names neither. None near
    // the entry: tsx's default, the working folder's.
    throw unreadTsconfig(tsconfig ?? join(process.cwd(), 'tsconfig.json'), cause);
  } finally {
    if (tsconfig !== undefined) delete process.env.TSX_TSCONFIG_PATH;
  }
  if (!namespace) {
    esm.register({ tsconfig });
    return undefined;
  }
  const scoped = esm.register({ namespace, tsconfig });
  const scopedImport: ScopedImport = (href) => scoped.import(href, import.meta.url);
  return scopedImport;
}

/** A tsconfig tsx could not read (`File './base.json' not found.` of a missing `extends`), named. */
function unreadTsconfig(tsconfig: string, cause: unknown): Error {
  return new Error(`its tsconfig ${tsconfig} could not be read: ${oneLine(cause)}`, { cause });
}

/** The imports of the entries whose nearest tsconfig is not the first TypeScript entry's, by that tsconfig. */
const scopedImports = new Map<string, Promise<ScopedImport | undefined>>();

/**
 * How to import a TypeScript entry so that it compiles with the `tsconfig.json` nearest to it:
 * `undefined` (a plain `import()`) when that is the one the process-wide hooks use (the first
 * TypeScript entry's, or `TSX_TSCONFIG_PATH`'s); else through a tsx namespace of its own, kept
 * per tsconfig, whose hooks compile the entry and everything it imports with that tsconfig.
 * tsx's namespaces load the modules under them anew (packages included): such an entry has its
 * own instances of what it imports, as a function of its own on FC does.
 */
async function typescriptImport(entry: string): Promise<ScopedImport | undefined> {
  const shared = await enableTypeScript(entry);
  if (shared === null) return undefined;
  const tsconfig = nearestTsconfig(entry);
  if (tsconfig === shared) return undefined;
  const key = tsconfig ?? '';
  let scoped = scopedImports.get(key);
  if (!scoped) {
    const namespace = `fc-async-tsconfig-${scopedImports.size + 1}`;
    scoped = Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) =>
      registerTsx(esm, cjs, tsconfig, namespace),
    );
    scopedImports.set(key, scoped);
  }
  return scoped;
}

/**
 * The tsconfig a TypeScript entry compiles with, when it is a file: `TSX_TSCONFIG_PATH`'s, else
 * the `tsconfig.json` nearest to the entry; `undefined` for JavaScript, and when there is none.
 * `fc-async dev --watch` watches it, so that an edit (`experimentalDecorators`) restarts.
 *
 * @example
 * ```ts
 * entryTsconfig('/app/src/main.ts'); // '/app/tsconfig.json' when there is none in /app/src
 * ```
 */
export function entryTsconfig(entry: string): string | undefined {
  if (!TYPESCRIPT.has(extname(entry))) return undefined;
  const named = process.env.TSX_TSCONFIG_PATH;
  return named ? resolve(named) : nearestTsconfig(entry);
}

/** The `tsconfig.json` in the entry's folder or the nearest folder above it, if any. */
function nearestTsconfig(entry: string): string | undefined {
  for (let dir = dirname(resolve(entry)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'tsconfig.json');
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Tells what a value exported by an entry is, or `undefined` when it is none of the kinds. */
export function classifyExport(value: unknown): EntryKind | undefined {
  if (typeof value === 'function') {
    const v = value as unknown as Record<string, unknown>;
    if (typeof v.mode === 'string' && isObject(v.tasks) && typeof v.drain === 'function') return 'fc-async-handler';
    if (typeof v.use === 'function' && typeof v.handle === 'function' && typeof v.set === 'function') return 'express';
    return 'fc-handler';
  }
  if (!isObject(value)) return undefined;
  if (typeof value.callback === 'function' && typeof value.use === 'function' && Array.isArray(value.middleware)) {
    return 'koa';
  }
  if (typeof value.routing === 'function' && typeof value.ready === 'function' && typeof value.inject === 'function') {
    return 'fastify';
  }
  return undefined;
}

/** What the emulator needs of a NestJS application (`NestFactory.create()`'s `INestApplication`). */
interface NestAppLike {
  init(): Promise<unknown>;
  getHttpAdapter(): { getInstance?: () => unknown } | undefined;
  listen(...args: unknown[]): unknown;
}

/** A NestJS application: its `init()`, `listen()` and `getHttpAdapter()`, which no Express, Koa or Fastify app has. */
function isNestApp(value: unknown): value is NestAppLike {
  return (
    isObject(value) &&
    typeof value.getHttpAdapter === 'function' &&
    typeof value.init === 'function' &&
    typeof value.listen === 'function'
  );
}

/**
 * A NestJS application is served through the Express or Fastify instance under it, once
 * `init()` (which a Nest app runs once, however often it is called) has registered its routes.
 * That is what an entry would export itself: `createHandler(app.getHttpAdapter().getInstance())`.
 */
async function nestEntry(app: NestAppLike, exportName: string, file: string): Promise<LoadedEntry> {
  // Its lifecycle hooks (onModuleInit, onApplicationBootstrap) run here: a database that never answers.
  loading.set(file, `the Nest app \`${exportName}\`'s init() (its onModuleInit and onApplicationBootstrap hooks)`);
  try {
    await app.init();
  } catch (cause) {
    const message = oneLine(cause);
    const where = thrownAt(cause);
    throw new FcAsyncError(
      'EntryLoadFailed',
      `Initializing the Nest app \`${exportName}\` of ${file} failed: ${message}${where ? ` (at ${where})` : ''}`,
      { cause },
    );
  } finally {
    loading.delete(file);
  }
  const instance = app.getHttpAdapter()?.getInstance?.();
  const kind = classifyExport(instance);
  if (kind === 'express' || kind === 'fastify') return { kind, value: instance, exportName };
  throw new FcAsyncError(
    'EntryNotServable',
    `${file}: \`${exportName}\` is a Nest app whose HTTP platform is neither Express nor Fastify (its getHttpAdapter().getInstance() is ${kindOf(instance)}): use @nestjs/platform-express or @nestjs/platform-fastify`,
  );
}

/** A thrown value's message on one line (a compiler's, such as tsx's "Transform failed with 1 error:", spans several). */
function oneLine(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).replace(/\s*\n\s*/g, ' ');
}

/** `null`, `an array`, `a promise`, `an object`, `a number`: what a value is, for messages. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isThenable(value)) return 'a promise';
  return /^[aeiou]/.test(typeof value) ? `an ${typeof value}` : `a ${typeof value}`;
}

/** A promise (anything with a `then` method), such as `NestFactory.create()`'s not awaited. */
function isThenable(value: unknown): boolean {
  return isObject(value) && typeof value.then === 'function';
}

/**
 * Imports `file` (TypeScript through tsx), as the module instance `instance` names when given (a
 * query on its URL; `fresh`: a CommonJS module is evaluated afresh, not taken from require's
 * cache). Throws `EntryNotFound` or `EntryLoadFailed`.
 */
async function importModule(
  file: string,
  instance: string | undefined,
  fresh: boolean,
): Promise<Record<string, unknown>> {
  if (!existsSync(file)) throw new FcAsyncError('EntryNotFound', `The entry ${file} does not exist`);
  if (!statSync(file).isFile()) throw new FcAsyncError('EntryNotFound', `The entry ${file} is not a file`);
  let scopedImport: ScopedImport | undefined;
  try {
    scopedImport = TYPESCRIPT.has(extname(file)) ? await typescriptImport(file) : undefined;
  } catch (cause) {
    throw new FcAsyncError('EntryLoadFailed', `Loading ${file} failed: ${oneLine(cause)}`, { cause });
  }
  const url = pathToFileURL(file);
  if (instance) {
    url.searchParams.set('fc-async-function', instance);
    if (fresh) forgetCommonJs(file);
  }
  loading.set(file, IMPORTING);
  try {
    return (await (scopedImport ? scopedImport(url.href) : import(url.href))) as Record<string, unknown>;
  } catch (cause) {
    // The module's URL, with the query that makes an instance of its own, is the file to the user.
    const message = oneLine(cause).split(url.href).join(file);
    const where = thrownAt(cause) ?? syntaxErrorAt(cause, file);
    throw new FcAsyncError('EntryLoadFailed', `Loading ${file} failed: ${message}${where ? ` (at ${where})` : ''}`, {
      cause,
    });
  } finally {
    loading.delete(file);
  }
}

/**
 * The function a lifecycle hook of the s.yaml names (`what`: `initializer`, `preStop`): export
 * `exportName` of `file`. In the entry's own file it is the entry's module instance (`instance`,
 * already loaded by {@link loadEntry}); in another file, the module the entry's imports share, as
 * one process of FC's would load it. Throws `EntryNotFound`, `EntryLoadFailed`, or
 * `EntryNotServable` when the export is missing or not a function.
 */
export async function loadHook(
  hook: { file: string; exportName: string; handler: string },
  what: string,
  entry: string,
  instance: string,
): Promise<(...args: unknown[]) => unknown> {
  const { file, exportName } = hook;
  const mod = await importModule(file, file === entry ? instance : undefined, false);
  const cjs = !isEsModule(file) && isObject(mod.default) ? mod.default : undefined;
  const value = mod[exportName] ?? cjs?.[exportName];
  if (typeof value === 'function') return value as (...args: unknown[]) => unknown;
  throw new FcAsyncError(
    'EntryNotServable',
    `${file}: the s.yaml names ${hook.handler} as the function's ${what}, but ${
      value === undefined
        ? `the module exports no \`${exportName}\``
        : `its \`${exportName}\` is ${kindOf(value)}, not a function`
    }`,
  );
}

/**
 * Loads an entry module (JavaScript or TypeScript, ESM or CommonJS) and picks the export to serve:
 * `exportName` when given, else the first of `handler`, `default` and `app` that is an app or a
 * handler. A NestJS application (`NestFactory.create()`) is initialized (`init()`) and served as
 * the Express or Fastify instance under it. `instance` makes a separate module instance for each
 * function that shares a file.
 * Throws an `FcAsyncError` (`EntryNotFound`, `EntryLoadFailed`, `EntryNotServable`).
 */
export async function loadEntry(file: string, exportName?: string, instance?: string): Promise<LoadedEntry> {
  const mod = await importModule(file, instance, true);
  const names = exportName ? [exportName] : CANDIDATES;
  // An ES module's default export is one export, not a module.exports: FC never looks into it.
  const esm = isEsModule(file);
  const cjs = !esm && isObject(mod.default) ? mod.default : undefined;
  for (const name of names) {
    // ESM exports first, then the properties of a CommonJS module's `module.exports`.
    for (const value of [mod[name], cjs?.[name]]) {
      const kind = classifyExport(value);
      if (kind) return { kind, value, exportName: name };
      if (isNestApp(value)) return nestEntry(value, name, file);
    }
  }
  // `default` is a CommonJS module's `module.exports` (listed by its keys), unless it is servable
  // itself (`export default app`): then it is what the asked-for name should have been.
  const found = [...new Set([...Object.keys(mod), ...Object.keys(cjs ?? {})])].filter(
    (k) => k !== 'default' || classifyExport(mod.default) !== undefined,
  );
  // A looked-at export that is there but is neither an app nor a function: say what it is.
  const wrong = names
    .map((name) => [name, mod[name] ?? cjs?.[name]] as const)
    .filter(([name, value]) => value !== undefined && !(name === 'default' && value === cjs))
    .map(([name, value]) => `${name} is ${kindOf(value)}`);
  // The s.yaml names one export, which FC calls: serving another here would hide a broken deployment.
  const named =
    exportName && found.length > 0
      ? `; FC calls the export the s.yaml handler names: export it, e.g. \`export const ${exportName} = createHandler(app)\``
      : '';
  // `export default NestFactory.create(...)` without `await`: what to export instead.
  const promised = names.find((name) => isThenable(mod[name] ?? cjs?.[name]));
  const awaitIt = promised
    ? `; \`${promised}\` is a promise: export what it resolves to (\`export ${promised === 'default' ? 'default' : `const ${promised} =`} await ...\` in an ES module; in a CommonJS one, a handler that awaits it on its first call)`
    : '';
  // No export at all: most often a custom runtime's start script (its own `listen(app)`), which
  // fc-async dev serves as FC does, from an s.yaml that starts it.
  const selfServing =
    !exportName && found.length === 0 && wrong.length === 0
      ? "; an entry that listens itself (a custom runtime's start script, `listen(app)`) is served from an s.yaml whose `customRuntimeConfig.command` starts it: `fc-async dev --config s.yaml`"
      : '';
  throw new FcAsyncError(
    'EntryNotServable',
    `${file} exports no Express, Koa or Fastify app and no FC handler (looked at ${names.join(', ')}` +
      `${wrong.length ? `: ${wrong.join(', ')}` : ''}; other exports: ${found.length ? found.join(', ') : 'none'})${named}` +
      (esm ? inDefaultObject(mod.default, names) : '') +
      awaitIt +
      selfServing,
  );
}

/**
 * `export default { handler }` in an ES module: a hint that FC calls the named export, which such a
 * module does not have (a CommonJS `module.exports = { handler }` is read, as FC reads it).
 */
function inDefaultObject(value: unknown, names: string[]): string {
  const name = isObject(value) ? names.find((n) => classifyExport(value[n]) !== undefined) : undefined;
  return name
    ? `; \`${name}\` is a property of the default export, but FC calls the ES module's named export \`${name}\`: write \`export const ${name} = ...\` (or \`export { ${name} }\`)`
    : '';
}

/**
 * Whether Node loads `file` as an ES module: `.mjs`/`.mts`, or `.js`/`.ts`/`.jsx`/`.tsx` under a
 * nearest package.json with `"type": "module"` (tsx follows the same rule for TypeScript).
 */
function isEsModule(file: string): boolean {
  const ext = extname(file);
  if (ext === '.mjs' || ext === '.mts') return true;
  if (ext === '.cjs' || ext === '.cts') return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: unknown }).type === 'module';
      } catch {
        return false;
      }
    }
    if (dirname(dir) === dir) return false;
  }
}

/** require's cache, which `import()` of a CommonJS module reads and fills whatever the URL's query. */
const requireCache = createRequire(import.meta.url).cache;

/**
 * Drops a CommonJS entry from require's cache, so that this import evaluates it afresh as the query
 * does an ES module (an earlier emulator's instance would otherwise be served, its handler closed).
 * Only the entry itself: the modules it requires are shared, as an ES module's imports are.
 */
function forgetCommonJs(file: string): void {
  delete requireCache[realpathSync(file)];
}

/**
 * Where a module's load threw (or, given a fresh Error, where the project's code is now): the first
 * frame of the error's stack in the project's own code (not Node's, not a package's, not this
 * loader's), as `file:line:column`, so that a throw deep in a config module is found; `undefined`
 * when there is none.
 */
export function thrownAt(error: unknown): string | undefined {
  const stack = error instanceof Error ? error.stack : undefined;
  if (!stack) return undefined;
  // A CommonJS module's syntax error: Node puts its place first, `/path/app.cjs:3`, then the line.
  const place = /^(\/.*):(\d+)$/.exec(stack.split('\n', 1)[0] ?? '');
  if (place && error instanceof SyntaxError) return `${place[1]}:${place[2]}`;
  for (const raw of stack.split('\n').slice(1)) {
    // `at fn (place)` or `at place`; a place is absolute (a path or a file URL) and may hold spaces
    // and parentheses (`proj (copy)/`), so it starts at the first ` (/` or ` (file://`.
    const line = raw.trim().replace(/^at /, '');
    const open = line.endsWith(')') ? line.search(/ \((?:file:\/\/)?\//) : -1;
    const place = open >= 0 ? line.slice(open + 2, -1) : line;
    const frame = /^(.+):(\d+):(\d+)$/.exec(place);
    if (!frame || frame[1]?.includes('/node_modules/') || !/^(file:\/\/)?\//.test(frame[1] ?? '')) continue;
    const file = frame[1] as string;
    // A module instance's query (see loadEntry) is not part of the file, as a file URL's or a path's.
    const path = file.startsWith('file://')
      ? fileURLToPath(file.split('?')[0] as string)
      : file.replace(/\?fc-async-function=[^/]*$/, '');
    if (path.startsWith(OWN_FOLDER)) continue; // the loader's own frame (this package unbundled in a workspace)
    return `${path}:${frame[2]}:${frame[3]}`;
  }
  return undefined;
}

/** This module's folder: a frame in it is the loader's, not the entry's. */
const OWN_FOLDER = fileURLToPath(new URL('.', import.meta.url));

/**
 * An ES module's syntax error carries no place (Node prints it only for the main module): `node
 * --check` of the entry finds it when the error is in the entry itself. Only after a failed load.
 */
function syntaxErrorAt(error: unknown, file: string): string | undefined {
  if (!(error instanceof SyntaxError) || TYPESCRIPT.has(extname(file))) return undefined;
  const checked = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  const place = /^(?:file:\/\/)?(\/.*):(\d+)$/m.exec(checked.stderr ?? '');
  if (!place) return undefined;
  const path = place[0].startsWith('file://') ? fileURLToPath(`file://${place[1]}`) : (place[1] as string);
  return `${path}:${place[2]}`;
}
