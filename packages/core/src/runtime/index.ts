export { addPreStopHook, type PreStopHook } from './hooks.js';
export type { FcListenOptions } from './options.js';
export { readNodeRequest } from './read.js';
export { createFcRuntime } from './runtime.js';
export { type FcServer, type FcServerHooks, listenFc } from './server.js';
export type {
  FcAsyncControls,
  FcRuntime,
  FcRuntimeOptions,
  ReplayTarget,
} from './types.js';
export { FC_STATUS_HEADER, isAnsweredInFront, writeBridgeResponse } from './write.js';
