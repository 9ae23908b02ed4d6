export { SyntheticCollector, type SyntheticCollectorOptions, type TcpEndSpec } from './synthetic-collector.js';
