import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';

const root = resolve(import.meta.dirname, '../../..');
const pages = [
  join(root, 'README.md'),
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(root, 'docs', f)),
];

/** Every code block introduced by `<!-- snippet: path -->` must be that file, byte for byte. */
const SNIPPET = /<!-- snippet: (\S+) -->\s*```\w*\n([\s\S]*?)```/g;

const cases = pages.flatMap((page) =>
  [...readFileSync(page, 'utf8').matchAll(SNIPPET)].map((m) => ({
    page: page.slice(root.length + 1),
    file: m[1] as string,
    code: m[2] as string,
  })),
);

describe('docs snippets are the real, type-checked files', () => {
  it('docs reference snippets', () => {
    expect(cases.length).toBeGreaterThan(0);
  });
  it.each(cases)('$page shows $file verbatim', ({ file, code }) => {
    expect(code).toBe(readFileSync(join(root, file), 'utf8'));
  });
});

/** A TypeScript or JavaScript block, with whatever stands right before it. */
const CODE_BLOCK = /(<!-- snippet: \S+ -->\s*)?```(?:ts|typescript|tsx|js|javascript|mjs|cjs)\n/g;

describe('every TypeScript or JavaScript block of the docs is a snippet', () => {
  // A block without the marker would be checked by nothing: it could stop compiling unseen.
  it.each(pages.map((page) => ({ page: page.slice(root.length + 1), text: readFileSync(page, 'utf8') })))(
    '$page has no unmarked code block',
    ({ text }) => {
      const unmarked = [...text.matchAll(CODE_BLOCK)]
        .filter((m) => m[1] === undefined)
        .map((m) => text.slice(0, m.index).split('\n').length);
      expect(unmarked, 'lines of code blocks without a <!-- snippet: path --> marker').toEqual([]);
    },
  );
});

/** Every YAML block of the docs (an s.yaml to deploy, or part of one) is YAML a parser takes. */
const YAML_BLOCK = /```yaml\n([\s\S]*?)```/g;
const yamlBlocks = pages.flatMap((page) =>
  [...readFileSync(page, 'utf8').matchAll(YAML_BLOCK)].map((m, i) => ({
    page: page.slice(root.length + 1),
    n: i + 1,
    text: m[1] as string,
  })),
);

describe('docs YAML blocks parse', () => {
  it('docs have YAML blocks', () => {
    expect(yamlBlocks.length).toBeGreaterThan(0);
  });
  it.each(yamlBlocks)('$page, YAML block $n', ({ text }) => {
    expect(parseDocument(text).errors.map((e) => e.message)).toEqual([]);
  });
});
