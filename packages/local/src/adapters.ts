import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { FcAsyncError, type FcHandler, type FcHandlerOptions } from '@fc-async/core';
import type { EntryKind } from './entry.js';

type CreateHandler = (app: unknown, options: FcHandlerOptions) => FcHandler;

const PACKAGES: Partial<Record<EntryKind, { pkg: string; label: string }>> = {
  express: { pkg: '@fc-async/express', label: 'an Express app' },
  koa: { pkg: '@fc-async/koa', label: 'a Koa app' },
  fastify: { pkg: '@fc-async/fastify', label: 'a Fastify app' },
};

/**
 * The adapter's `createHandler` for an app kind: resolved from the entry's folder first (the
 * project's own copy), then from this package. Throws `AdapterMissing` with the install command.
 */
export async function adapterFor(kind: EntryKind, entryFile: string): Promise<CreateHandler> {
  const info = PACKAGES[kind];
  if (!info) throw new TypeError(`No adapter for ${kind}`);
  let specifier = info.pkg;
  try {
    specifier = pathToFileURL(createRequire(entryFile).resolve(info.pkg)).href;
  } catch {
    // not installed next to the entry: try our own resolution below
  }
  try {
    const mod = (await import(specifier)) as { createHandler?: unknown };
    if (typeof mod.createHandler === 'function') return mod.createHandler as CreateHandler;
  } catch (cause) {
    throw new FcAsyncError(
      'AdapterMissing',
      `Serving ${info.label} needs ${info.pkg}, which could not be loaded: npm install ${info.pkg}`,
      { cause },
    );
  }
  throw new FcAsyncError('AdapterMissing', `${info.pkg} does not export createHandler()`);
}
