// The optional TCP endpoint for Prometheus (`metrics.listen`): GET /metrics and nothing else,
// read-only, no token (it shows counts, never message content). Off unless configured; a bare
// port binds 127.0.0.1, so exposing it beyond the host takes an explicit address.
import { createServer, type Server } from 'node:http';
import type { Log } from '../log.js';
import type { DaemonMetrics } from './metrics.js';
export { parseListen } from '../config/listen-address.js';

export class MetricsListener {
  readonly #server: Server;

  constructor(metrics: Pick<DaemonMetrics, 'scrape'>, log: Log) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain' }).end(path === '/metrics' ? 'use GET\n' : 'only /metrics is served here\n');
        return;
      }
      metrics.scrape().then(
        ({ text, contentType }) => {
          res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
        },
      );
    });
    this.#server.requestTimeout = 10_000;
    this.#server.headersTimeout = 5_000;
  }

  /** Binds; resolves with the address actually bound (port 0 picks one). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const a = this.#server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
      });
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
