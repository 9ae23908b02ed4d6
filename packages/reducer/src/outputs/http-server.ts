// The reducer's HTTP endpoint: /metrics for Prometheus, /api/... for the SQLite store's JSON
// API (when the store is on), /healthz for probes.

import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Logger, UserError } from '@ebpf-net/common';
import type { PrometheusSink } from './prometheus/sink.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export class HttpEndpoint {
  private readonly server: Server;

  constructor(
    private readonly host: string,
    private readonly port: number,
    prometheus: PrometheusSink,
    routes: readonly RouteHandler[],
    private readonly log: Logger,
  ) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(prometheus.exposition());
        return;
      }
      if (req.method === 'GET' && path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
        return;
      }
      for (const route of routes) if (route(req, res)) return;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no such path: ${path}; try /metrics, /api/flows, /api/series` }));
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') reject(new UserError(`metrics port ${this.port} is in use; stop what holds it or choose another with --prom`));
        else if (error.code === 'EADDRNOTAVAIL') reject(new UserError(`--prom: ${this.host} is not an address of this machine`));
        else reject(error);
      };
      this.server.once('error', onError);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        const port = typeof address === 'object' && address ? address.port : this.port;
        this.log.info({ host: this.host, port }, 'serving /metrics and /api');
        resolve(port);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
