export * from './apps.js';
export * from './child.js';
export * from './fixtures.js';
export * from './logger.js';
export * from './middleware/index.js';
export * from './targets.js';
export * from './tracing-sdk.js';
export * from './wait.js';
