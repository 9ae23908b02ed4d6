// One gRPC channel to the collector and its one RPC, MetricsService/Export. Requests arrive
// already encoded (the exporter encodes once, at write time, and keeps the bytes while it
// retries); responses are decoded with protobufjs from the same .proto files.

import { type ClientUnaryCall, Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { BackoffOptions } from './backoff.js';
import { OtlpConfigError, OtlpExportError } from './errors.js';
import type { OtlpProtos } from './protos.js';

export interface ExportResult {
  /** Data points the collector said it rejected (partial success); 0 when all were accepted. */
  readonly rejectedDataPoints: number;
  readonly errorMessage: string;
}

export interface GrpcTransportOptions {
  /** `host:port`; a leading `http://` is accepted and ignored. */
  readonly endpoint: string;
  /** Sent as gRPC metadata with every call (API keys, tenant ids). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The channel's own reconnect backoff follows the exporter's, so a collector back up is seen as soon as a retry is due. */
  readonly reconnect: BackoffOptions;
}

/** `host:port` for grpc-js from what a user may write; throws OtlpConfigError otherwise. */
export function parseEndpoint(endpoint: string): string {
  const trimmed = endpoint.trim();
  if (/^https:\/\//i.test(trimmed)) {
    throw new OtlpConfigError(`OTLP endpoint ${endpoint}: TLS is not supported; give a plaintext host:port`);
  }
  const target = trimmed.replace(/^http:\/\//i, '').replace(/\/$/, '');
  // A host name or IPv4 address, or a bracketed IPv6 address, then a port.
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(target);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    throw new OtlpConfigError(`OTLP endpoint "${endpoint}" is not host:port (for example 127.0.0.1:4317)`);
  }
  return target;
}

function toMetadata(headers: Readonly<Record<string, string>>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(headers)) {
    try {
      metadata.add(key.toLowerCase(), value);
    } catch (err) {
      throw new OtlpConfigError(`OTLP header "${key}": ${(err as Error).message}`);
    }
  }
  return metadata;
}

export class GrpcMetricsTransport {
  private readonly client: Client;
  private readonly metadata: Metadata;
  private readonly calls = new Set<ClientUnaryCall>();

  constructor(
    private readonly protos: OtlpProtos,
    options: GrpcTransportOptions,
  ) {
    this.metadata = toMetadata(options.headers ?? {});
    this.client = new Client(parseEndpoint(options.endpoint), credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': options.reconnect.initialMs,
      'grpc.max_reconnect_backoff_ms': options.reconnect.maxMs,
    });
  }

  /** Sends one encoded ExportMetricsServiceRequest; rejects with OtlpExportError. */
  export(body: Buffer, deadline: Date): Promise<ExportResult> {
    return new Promise((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        this.protos.exportPath,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => this.decodeResponse(bytes),
        body,
        this.metadata.clone(),
        { deadline },
        (err: ServiceError | null, result?: ExportResult) => {
          this.calls.delete(call);
          if (err) reject(new OtlpExportError(err.code, err.details));
          else if (result) resolve(result);
          else reject(new OtlpExportError(status.INTERNAL, 'empty response'));
        },
      );
      this.calls.add(call);
    });
  }

  /** Cancels calls still running (they fail with CANCELLED) and closes the channel. */
  close(): void {
    for (const call of this.calls) call.cancel();
    this.client.close();
  }

  private decodeResponse(bytes: Buffer): ExportResult {
    const { response } = this.protos;
    const decoded = response.toObject(response.decode(bytes), { longs: Number }) as {
      partialSuccess?: { rejectedDataPoints?: number; errorMessage?: string };
    };
    return {
      rejectedDataPoints: decoded.partialSuccess?.rejectedDataPoints ?? 0,
      errorMessage: decoded.partialSuccess?.errorMessage ?? '',
    };
  }
}
