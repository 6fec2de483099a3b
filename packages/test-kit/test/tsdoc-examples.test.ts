import { describe, expect, it } from 'vitest';
import { type Example, exampleModule, publishedPackages, readExamples, typeCheck } from './tsdoc.js';

// Every public export carries TSDoc with an `@example` (the project standard), and those examples compile
// against the real API: each is type-checked, strict and NodeNext, against the packages' built
// types, importing them by their public names. Runs on the built code, which `npm test` builds first.

const packages = publishedPackages();
const { examples, exports, program } = readExamples(packages);
const exportNames = new Map(
  packages.map((p) => [p.name, new Set(exports.filter((e) => e.pkg === p.name).map((e) => e.name))]),
);
const fileName = (e: Example, i: number) => `${e.pkg.replace(/^@fc-async\//, '').replace('/', '-')}-${i}.ts`;

// Broken on purpose, checked in the same program: the check must catch each of these.
const broken: Example[] = [
  { code: "import { createHandlr } from '@fc-async/express';" },
  { code: "import { fcAsync } from '@fc-async/express';\nfcAsync({ async: { concurency: 4 } });" },
  { code: "import { memory } from '@fc-async/core';\nmemory({ maxTasks: '50' });" },
  { code: 'const options: FcHandlerOptions = { textContentTypes: "text/*" };' },
].map(({ code }, i) => ({ pkg: '@fc-async/core', owner: `broken ${i}`, at: 'tsdoc-examples.test.ts', code }));

const modules = new Map<string, string>();
examples.forEach((e, i) => {
  modules.set(fileName(e, i), exampleModule(e, exportNames.get(e.pkg) as Set<string>));
});
broken.forEach((e, i) => {
  modules.set(`broken-${i}.ts`, exampleModule(e, exportNames.get(e.pkg) as Set<string>));
});
const errors = typeCheck(modules, program);

describe('TSDoc examples of the published packages', () => {
  it.each(packages.map((p) => [p.name]))('%s: every export has TSDoc with an @example', (name) => {
    const named = exports.filter((e) => e.pkg === name);
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((e) => !e.hasExample).map((e) => e.name)).toEqual([]);
  });

  it.each(packages.map((p) => [p.name]))('%s: every runtime export is a documented export', async (name) => {
    const runtime = Object.keys(await import(name));
    expect(runtime.length).toBeGreaterThan(0);
    const documented = new Set(exports.filter((e) => e.pkg === name && e.hasExample).map((e) => e.name));
    expect(runtime.filter((key) => !documented.has(key))).toEqual([]);
  });

  it.each(packages.map((p) => [p.name]))('%s: every @example type-checks against the built types', (name) => {
    const own = examples.flatMap((e, i) => (e.pkg === name ? [[fileName(e, i), e] as const] : []));
    expect(own.length).toBeGreaterThan(0);
    const failing = own.flatMap(([file, e]) =>
      errors.filter((line) => line.startsWith(`${file}:`)).map((line) => `${e.owner} (${e.at}) ${line}`),
    );
    expect(failing).toEqual([]);
  });

  it('catches a missing export, a wrong option name and a wrong type', () => {
    const caught = broken.map((_, i) => errors.filter((line) => line.startsWith(`broken-${i}.ts:`)));
    expect(caught[0]?.join('\n')).toMatch(/has no exported member named 'createHandlr'/);
    expect(caught[1]?.join('\n')).toMatch(/'concurency' does not exist/);
    expect(caught[2]?.join('\n')).toMatch(/Type 'string' is not assignable to type 'number'/);
    expect(caught[3]?.join('\n')).toMatch(/Type 'string' is not assignable to type 'readonly /);
  });
});
