import { chmod, copyFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Builds the code folder s.yaml deploys: `server.mjs` (src/server.ts with every dependency
 * bundled: FC gets no node_modules) and `bootstrap`, executable. Resolves the folder.
 */
export async function bundleServer(outDir = join(ROOT, 'dist')): Promise<string> {
  await rm(outDir, { recursive: true, force: true });
  await build({
    entryPoints: [join(ROOT, 'src/server.ts')],
    outfile: join(outDir, 'server.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'error',
    // Express and its dependencies are CommonJS: give their `require` calls one in an ES module.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  await copyFile(join(ROOT, 'bootstrap'), join(outDir, 'bootstrap'));
  await chmod(join(outDir, 'bootstrap'), 0o755);
  return outDir;
}
