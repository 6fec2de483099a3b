export * from './targets.js';
export type * from './types.js';
