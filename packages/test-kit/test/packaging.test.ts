import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// What a user installs from npm gets only a package's own dependencies: a module its built code
// imports but that is only a devDependency (or hoisted from another workspace) works here and
// breaks there. Runs on the built code, which `npm test` builds first.

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));
const BUILTINS = new Set(builtinModules);

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : /\.(js|cjs|mjs)$/.test(name) ? [path] : [];
  });
}

/** Bare module names a built file imports or requires (comments and relative imports left out). */
function importedPackages(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const names = new Set<string>();
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
    const spec = m[1] as string;
    if (spec.startsWith('.') || spec.startsWith('/')) continue;
    const bare = spec.startsWith('node:') ? spec.slice(5) : spec;
    if (BUILTINS.has(bare) || BUILTINS.has(bare.split('/')[0] as string)) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
  }
  return [...names];
}

const published = readdirSync(PACKAGES)
  .map((dir) => ({ dir: join(PACKAGES, dir), manifest: join(PACKAGES, dir, 'package.json') }))
  .filter(({ manifest }) => existsSync(manifest))
  .map(({ dir, manifest }) => ({ dir, pkg: JSON.parse(readFileSync(manifest, 'utf8')) }))
  .filter(({ pkg }) => !pkg.private);

describe('published packages', () => {
  it('are all found', () => {
    expect(published.map(({ pkg }) => pkg.name).sort()).toEqual([
      '@fc-async/bullmq',
      '@fc-async/core',
      '@fc-async/express',
      '@fc-async/fastify',
      '@fc-async/koa',
      '@fc-async/local',
      '@fc-async/sqlite',
    ]);
  });

  it.each(published.map(({ dir, pkg }) => [pkg.name as string, dir, pkg] as const))(
    '%s imports only what it declares (dependencies, peer dependencies, Node built-ins)',
    (_name, dir, pkg) => {
      const declared = new Set([
        pkg.name,
        ...Object.keys(pkg.dependencies ?? {}),
        ...Object.keys(pkg.peerDependencies ?? {}),
        ...Object.keys(pkg.optionalDependencies ?? {}),
      ]);
      const built = [...files(join(dir, 'dist')), ...files(join(dir, 'bin'))];
      expect(built.length).toBeGreaterThan(0);
      const undeclared = built.flatMap((file) =>
        importedPackages(readFileSync(file, 'utf8'))
          .filter((name) => !declared.has(name))
          .map((name) => `${name} (${file.slice(dir.length + 1)})`),
      );
      expect(undeclared).toEqual([]);
    },
  );

  it.each(published.map(({ dir, pkg }) => [pkg.name as string, dir] as const))(
    '%s ships its licence, and every source its maps name (stack traces and go-to-definition find them)',
    (_name, dir) => {
      const [packed] = JSON.parse(
        execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' }),
      ) as [{ files: { path: string }[] }];
      const shipped = new Set(packed.files.map((f) => f.path));
      expect(shipped.has('LICENSE')).toBe(true);
      const maps = [...shipped].filter((path) => path.endsWith('.map'));
      expect(maps.length).toBeGreaterThan(0);
      const missing = maps.flatMap((map) => {
        const { sources } = JSON.parse(readFileSync(join(dir, map), 'utf8')) as { sources: string[] };
        return sources
          .map((source) => posix.normalize(posix.join(posix.dirname(map), source)))
          .filter((source) => !shipped.has(source));
      });
      expect(missing).toEqual([]);
    },
  );

  it.each(published.map(({ dir, pkg }) => [pkg.name as string, dir] as const))(
    '%s has a README that names it and says how to install it (its npm page)',
    (name, dir) => {
      const readme = readFileSync(join(dir, 'README.md'), 'utf8');
      expect(readme.startsWith(`# ${name}\n`)).toBe(true);
      expect(readme).toContain(`npm install`);
      expect(readme).toMatch(new RegExp(`npm install [^\n]*${name.replace('/', '\\/')}`));
    },
  );

  // TypeScript 5.x gives `module: "commonjs"` (what getting-started names for CommonJS projects)
  // the node10 resolution, which reads `types` and `typesVersions`, never `exports`: a subpath
  // export without a typesVersions entry is TS2307 there, though Node runs it.
  it.each(published.map(({ dir, pkg }) => [pkg.name as string, dir, pkg] as const))(
    '%s: every export resolves to its types under module "commonjs" (node10 resolution) too',
    (name, dir, pkg) => {
      const from = fileURLToPath(new URL('./importer.ts', import.meta.url));
      const options = { moduleResolution: ts.ModuleResolutionKind.Node10 };
      const entries = Object.entries(pkg.exports as Record<string, string | { types?: string }>).flatMap(
        ([subpath, target]) => (typeof target === 'object' && target.types ? [[subpath, target.types] as const] : []),
      );
      expect(entries.length).toBeGreaterThan(0);
      const unresolved = entries.flatMap(([subpath, types]) => {
        const specifier = posix.join(name, subpath);
        const { resolvedModule } = ts.resolveModuleName(specifier, from, options, ts.sys);
        const found = resolvedModule ? realpathSync(resolvedModule.resolvedFileName) : 'nothing';
        return found === realpathSync(join(dir, types)) ? [] : [`${specifier}: ${found}, not ${types}`];
      });
      expect(unresolved).toEqual([]);
    },
  );

  // A project with `skipLibCheck: false` type-checks every declaration file its program reaches:
  // ours, and those of the packages our public types name (ioredis for BullmqBackendOptions'
  // `connection`, @opentelemetry/api), which npm installs for the user. ioredis's declarations
  // import `redis-errors`, which ships no types: TS7016 under `strict` unless @types/redis-errors
  // is there, so @fc-async/bullmq depends on it. `lib` without `dom` checks that our declarations
  // need only what @types/node declares. The frameworks' own types (@types/koa...) are left out:
  // the user picks their versions.
  it('type-check in a strict consumer with skipLibCheck false and no DOM lib', () => {
    const consumer = fileURLToPath(new URL('./consumer-app.ts', import.meta.url));
    const source = [
      ...published.flatMap(({ pkg }, p) =>
        Object.entries(pkg.exports as Record<string, unknown>)
          .filter(([, target]) => typeof target === 'object' && target !== null && 'types' in target)
          .map(([subpath], i) => `export * as m${p}_${i} from '${posix.join(pkg.name, subpath)}';`),
      ),
      `import { bullmq, type BullmqBackendOptions } from '@fc-async/bullmq';`,
      `import { sqlite } from '@fc-async/sqlite';`,
      `import { createHandler, getInvocation } from '@fc-async/express';`,
      `const connection: BullmqBackendOptions['connection'] = { host: '127.0.0.1', port: 6379, db: 2 };`,
      `export const backends = [bullmq({ connection, prefix: 'jobs' }), sqlite('./tasks.db')];`,
      `export const handler = createHandler((req, res) => { res.end(getInvocation(req)?.requestId); }, { async: { mode: 'local' } });`,
    ].join('\n');
    const options: ts.CompilerOptions = {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2022.d.ts'],
      types: ['node'],
      strict: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: false,
      noEmit: true,
    };
    const host = ts.createCompilerHost(options);
    const { getSourceFile, fileExists, readFile } = host;
    host.fileExists = (file) => file === consumer || fileExists.call(host, file);
    host.readFile = (file) => (file === consumer ? source : readFile.call(host, file));
    host.getSourceFile = (file, language, ...rest) =>
      file === consumer
        ? ts.createSourceFile(file, source, language)
        : getSourceFile.call(host, file, language, ...rest);
    const ours = new Set([
      '@opentelemetry/api',
      ...published.flatMap(({ pkg }) => [pkg.name, ...Object.keys(pkg.dependencies ?? {})]),
    ]);
    const owner = (file: string) => {
      const at = file.lastIndexOf('/node_modules/');
      if (at < 0) return undefined; // the consumer, or a workspace package's dist
      const [scope, name] = file.slice(at + '/node_modules/'.length).split('/');
      return scope?.startsWith('@') ? `${scope}/${name}` : scope;
    };
    const program = ts.createProgram([consumer], options, host);
    const found = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => {
        const name = d.file && owner(d.file.fileName);
        return name === undefined || ours.has(name);
      })
      .map((d) => {
        const where = d.file ? `${d.file.fileName.slice(dirname(PACKAGES).length)}: ` : '';
        return `${where}TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    expect(found).toEqual([]);
  });
});
