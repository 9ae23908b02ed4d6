// A real OTLP MetricsService for tests: a gRPC server on 127.0.0.1 built from the official
// .proto files, decoding requests with protobufjs, answering as the test says.

import { type Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, type status } from '@grpc/grpc-js';
import { loadOtlpProtos } from '../src/outputs/otlp/index.js';
import { waitFor } from './support.js';

const protos = loadOtlpProtos();

/** A decoded ExportMetricsServiceRequest: protobufjs toObject, 64-bit integers and enums as strings. */
export type Decoded = {
  resourceMetrics: Array<{
    resource?: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeMetrics: Array<{
      metrics: Array<{
        name: string;
        unit?: string;
        sum?: { isMonotonic?: boolean; aggregationTemporality?: string; dataPoints: Array<{ asInt?: string; asDouble?: number; attributes: Array<{ key: string; value: { stringValue?: string } }>; startTimeUnixNano?: string; timeUnixNano?: string }> };
        gauge?: { dataPoints: Array<{ asInt?: string; asDouble?: number; attributes: Array<{ key: string; value: { stringValue?: string } }> }> };
        histogram?: { dataPoints: Array<{ count?: string; sum?: number; bucketCounts?: string[]; explicitBounds?: number[]; attributes: Array<{ key: string; value: { stringValue?: string } }> }> };
      }>;
    }>;
  }>;
};

export type Reply = 'ok' | { code: status; details: string };

export interface OtlpReceiver {
  readonly port: number;
  /** Requests answered OK, in arrival order. */
  readonly received: Decoded[];
  readonly metadata: Metadata[];
  /** Export calls seen, whatever the answer. */
  calls(): number;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

const servers = new Set<Server>();

/** Shuts down every receiver still running (call from after()). */
export function closeAllReceivers(): void {
  for (const server of servers) server.forceShutdown();
  servers.clear();
}

/** A MetricsService that answers call number n (from 1) with reply(n). */
export async function startReceiver(reply: (call: number) => Reply = () => 'ok', port = 0): Promise<OtlpReceiver> {
  const server = new Server();
  const received: Decoded[] = [];
  const metadata: Metadata[] = [];
  let calls = 0;
  server.addService(
    {
      Export: {
        path: protos.exportPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: (request: object) => Buffer.from(protos.request.encode(protos.request.fromObject(request)).finish()),
        requestDeserialize: (bytes: Buffer) => protos.request.toObject(protos.request.decode(bytes), { longs: String, enums: String }) as Decoded,
        responseSerialize: (response: object) => Buffer.from(protos.response.encode(protos.response.fromObject(response)).finish()),
        responseDeserialize: (bytes: Buffer) => protos.response.toObject(protos.response.decode(bytes)),
      },
    },
    {
      Export: (call: ServerUnaryCall<Decoded, object>, callback: sendUnaryData<object>) => {
        const answer = reply(++calls);
        if (answer !== 'ok') {
          callback({ code: answer.code, details: answer.details });
          return;
        }
        received.push(call.request);
        metadata.push(call.metadata);
        callback(null, {});
      },
    },
  );
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  servers.add(server);
  return {
    port: bound,
    received,
    metadata,
    calls: () => calls,
    waitFor: (count, timeoutMs = 5000) => waitFor(`${count} export(s) received`, () => received.length >= count, timeoutMs),
    close: () => {
      server.forceShutdown();
      servers.delete(server);
    },
  };
}

/** A port nothing listens on, that a receiver can bind later. */
export async function reservePort(): Promise<number> {
  const receiver = await startReceiver();
  receiver.close();
  return receiver.port;
}
