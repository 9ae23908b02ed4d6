export * from './abi.js';
export * from './events.js';
export * from './probes.js';
