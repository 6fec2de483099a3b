import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Creates a folder and its missing parents, like `mkdir -p`, and fails with the error of the
 * first folder that cannot be made. Node's own `mkdirSync(path, { recursive: true })` never
 * returns where `mkdir` answers `ENOENT` under an existing parent (below `/proc` or `/sys`): this
 * one creates the missing folders one by one, so such a path fails with `ENOENT` instead.
 *
 * @example
 * ```ts
 * makeFolderSync('.fc-async/records'); // like mkdir -p
 * ```
 */
export function makeFolderSync(path: string): void {
  const missing: string[] = [];
  for (let current = resolve(path); !exists(current); current = dirname(current)) {
    missing.push(current);
    if (dirname(current) === current) break;
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder);
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') throw error;
    }
  }
}
