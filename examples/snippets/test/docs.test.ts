import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

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
