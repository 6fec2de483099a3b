/**
 * `@fc-async/local`: the local Function Compute emulator behind the `fc-async dev` command.
 *
 * @packageDocumentation
 */
export { type Emulator, startEmulator } from './emulator.js';
export type { LogFormat } from './log.js';
export type { EmulatorOptions } from './options.js';
export { loadServerlessConfig, type ServerlessConfig, type ServerlessConfigOptions } from './serverless.js';
export { type SignatureResult, type SignedRequest, signAcsRequest, verifyAcsSignature } from './signature.js';
export type { AsyncConfigInput, FunctionSpec, HealthCheck, LifecycleHook } from './spec.js';
