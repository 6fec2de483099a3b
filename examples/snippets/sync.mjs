// Rewrites every `<!-- snippet: path -->` code block in README.md and docs/*.md with the file's
// current content. Run after editing a snippet: `npm run sync -w @fc-async/example-snippets`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const pages = [
  join(root, 'README.md'),
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(root, 'docs', f)),
];
for (const page of pages) {
  const text = readFileSync(page, 'utf8');
  const next = text.replace(
    /(<!-- snippet: (\S+) -->\s*```\w*\n)[\s\S]*?```/g,
    (_m, head, file) => `${head}${readFileSync(join(root, file), 'utf8')}\`\`\``,
  );
  if (next !== text) {
    writeFileSync(page, next);
    console.log(`updated ${page.slice(root.length + 1)}`);
  }
}
