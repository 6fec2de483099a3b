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
