import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

/** `path` and its ancestors up to the first that exists, deepest first. */
function missingFolders(path: string, exists: (p: string) => boolean): string[] {
  const missing: string[] = [];
  let current = resolve(path);
  while (!exists(current)) {
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return missing;
}

function existsSync(path: string): boolean {
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
 * first folder that cannot be made. Node's own `mkdir(path, { recursive: true })` never returns
 * where `mkdir` answers `ENOENT` under an existing parent (below `/proc` or `/sys`): this one
 * creates the missing folders one by one, so such a path fails with `ENOENT` instead.
 *
 * @example
 * ```ts
 * makeFolderSync('.fc-async/records'); // like mkdir -p
 * ```
 */
export function makeFolderSync(path: string): void {
  for (const folder of missingFolders(path, existsSync).reverse()) {
    try {
      mkdirSync(folder);
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') throw error;
    }
  }
}

/**
 * {@link makeFolderSync} without blocking: resolves once the folder exists.
 *
 * @example
 * ```ts
 * await makeFolder('.fc-async/records');
 * ```
 */
export async function makeFolder(path: string): Promise<void> {
  const missing: string[] = [];
  let current = resolve(path);
  for (;;) {
    try {
      await stat(current);
      break;
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error;
    }
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const folder of missing.reverse()) {
    try {
      await mkdir(folder);
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') throw error;
    }
  }
}
