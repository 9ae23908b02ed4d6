// Loads the official OTLP .proto files (packages/reducer/proto) with protobufjs. They are read
// at run time, not compiled to code, so the vendored files stay the single source of truth.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { OtlpConfigError } from './errors.js';

const SERVICE_FILE = 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto';
const PACKAGE = 'opentelemetry.proto.collector.metrics.v1';

export interface OtlpProtos {
  readonly root: protobuf.Root;
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  /** gRPC method path of MetricsService.Export, taken from the service definition. */
  readonly exportPath: string;
}

/** The proto directory of this package, from src/outputs/otlp (3 up) or dist/src/outputs/otlp (4 up). */
export function defaultProtoDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../proto'), path.resolve(here, '../../../../proto')];
  const found = candidates.find((dir) => existsSync(path.join(dir, SERVICE_FILE)));
  if (!found) throw new OtlpConfigError(`OTLP protocol files not found (looked in ${candidates.join(', ')}); reinstall the reducer package`);
  return found;
}

export function loadOtlpProtos(protoDir: string = defaultProtoDir()): OtlpProtos {
  const root = new protobuf.Root();
  // Imports name paths from the proto root ("opentelemetry/proto/..."), whichever file asks.
  root.resolvePath = (_origin, target) => path.join(protoDir, target);
  try {
    root.loadSync(SERVICE_FILE);
    root.resolveAll();
  } catch (err) {
    throw new OtlpConfigError(`cannot load the OTLP protocol files from ${protoDir}: ${(err as Error).message}`);
  }
  const service = root.lookupService(`${PACKAGE}.MetricsService`);
  const method = service.methods['Export'];
  if (!method) throw new OtlpConfigError(`${PACKAGE}.MetricsService has no Export method in ${protoDir}`);
  return {
    root,
    request: root.lookupType(`${PACKAGE}.ExportMetricsServiceRequest`),
    response: root.lookupType(`${PACKAGE}.ExportMetricsServiceResponse`),
    exportPath: `/${service.fullName.replace(/^\./, '')}/${method.name}`,
  };
}
