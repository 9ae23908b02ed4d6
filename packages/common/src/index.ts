export * from './logger.js';
export * from './user-error.js';
export * from './config.js';
export * from './cli.js';
