export * from './apps.js';
export * from './fixtures.js';
export * from './logger.js';
export * from './targets.js';
