import type { FcInvokeClient } from './fc-function.js';
import { DestinationError } from './types.js';

/** The parts of `@alicloud/fc20230330` the FC destination uses. */
export interface Sdk {
  Client: new (config: unknown) => FcInvokeClient;
  InvokeFunctionRequest: new (map: Record<string, unknown>) => unknown;
  InvokeFunctionHeaders: new (map: Record<string, unknown>) => unknown;
}

/**
 * Imports the optional SDK. A missing package becomes a non-retryable `DestinationSdkMissing`
 * naming the install command.
 */
export async function loadSdk(): Promise<Sdk> {
  let fc: Record<string, unknown>;
  try {
    fc = cjsExports(await import('@alicloud/fc20230330'));
  } catch (error) {
    const missing = ['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND'].includes(String((error as { code?: unknown })?.code));
    throw new DestinationError(
      'DestinationSdkMissing',
      missing
        ? 'fcFunctionDestination needs the optional peer dependency `@alicloud/fc20230330`: npm install @alicloud/fc20230330'
        : `Could not load \`@alicloud/fc20230330\`: ${(error as Error)?.message ?? String(error)}`,
      { retryable: false, cause: error },
    );
  }
  const Client = typeof fc.default === 'function' ? fc.default : undefined;
  if (!Client || typeof fc.InvokeFunctionRequest !== 'function' || typeof fc.InvokeFunctionHeaders !== 'function') {
    throw new DestinationError('DestinationSdkMissing', '`@alicloud/fc20230330` does not export the expected Client', {
      retryable: false,
    });
  }
  return {
    Client: Client as Sdk['Client'],
    InvokeFunctionRequest: fc.InvokeFunctionRequest as Sdk['InvokeFunctionRequest'],
    InvokeFunctionHeaders: fc.InvokeFunctionHeaders as Sdk['InvokeFunctionHeaders'],
  };
}

/** `module.exports` of a CommonJS module imported from ESM (Node puts it on `default`). */
function cjsExports(namespace: unknown): Record<string, unknown> {
  const ns = namespace as Record<string, unknown>;
  const inner = ns.default as Record<string, unknown> | undefined;
  return inner && typeof inner === 'object' && '__esModule' in inner ? inner : ns;
}

/**
 * A client from the destination's config. The client's constructor only reads the fields of
 * `$OpenApiUtil.Config` (`@alicloud/openapi-core`), so a plain object is passed: importing
 * openapi-core, which is not a peer dependency, could fail under strict installs and bundlers.
 */
export function newClient(sdk: Sdk, config: Record<string, unknown>): FcInvokeClient {
  return new sdk.Client(config);
}
