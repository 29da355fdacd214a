// The control server's limits and the connection-level half of enforcing them: how many
// connections are served, what Node answers to slow, oversized or malformed requests, and the
// log line when connections are turned away. Node's own defaults are no connection cap and a
// 300 s request timeout; a local control socket needs neither, and a client that opens
// connections or streams without end must not take the daemon's file descriptors or memory.
import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Log } from '../log.js';
import type { ApiErrorBody, ApiErrorCode } from './http-error.js';

/** The server's limits; the daemon runs with DEFAULT_LIMITS, tests pass small ones. */
export interface ControlLimits {
  /**
   * Connections served at once. A connection past it gets 503 `too_many_connections` to its
   * first request and is closed; past twice this many, Node closes new connections unanswered
   * (logged as `control: connection limit reached`).
   */
  maxConnections: number;
  /** Open `subscriber` routes (`GET /v1/events`) at once; one more is answered 503 `too_many_subscribers`. */
  maxEventSubscribers: number;
  /** Time to receive a request's headers (answered 408 `request_timeout`); also ends a connection that sends nothing. */
  headersTimeoutMs: number;
  /**
   * Time to receive a whole request, headers and body (answered 408 `request_timeout`). It does
   * not bound a response: event and pairing streams stay open for as long as both sides want.
   */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long (Node allows up to a second more). */
  keepAliveTimeoutMs: number;
}

/** The limits the daemon runs with. */
export const DEFAULT_LIMITS: ControlLimits = {
  maxConnections: 128,
  maxEventSubscribers: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/** Largest request head (request line and headers) accepted: Node's default, stated here. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** At most one warning per this interval about connections closed unanswered. */
const DROP_LOG_INTERVAL_MS = 10_000;

/** Options for `createServer` that apply the limits. */
export function httpServerOptions(limits: ControlLimits): ServerOptions {
  return {
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the two timeouts above on this interval (30 s by default), so a timeout
    // shorter than it would only be enforced late.
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4))),
  };
}

/**
 * Counts a server's connections, marks those past `maxConnections` (the server answers their
 * first request 503), lets Node close those past twice the limit, and answers what Node refuses
 * before a request exists (timeouts, oversized heads, malformed HTTP) with a JSON error.
 */
export class ConnectionGuard {
  readonly #connections = new Set<Socket>();
  readonly #overLimit = new WeakSet<Socket>();
  readonly #limits: ControlLimits;
  readonly #log: Log;
  #dropped = 0;
  #lastDropLog = -Infinity;

  constructor(server: Server, limits: ControlLimits, log: Log) {
    this.#limits = limits;
    this.#log = log;
    // No socket inactivity timeout (`server.timeout` stays 0): an event stream may be quiet for hours.
    server.maxConnections = limits.maxConnections * 2;
    server.on('connection', (socket: Socket) => {
      this.#connections.add(socket);
      if (this.#connections.size > limits.maxConnections) this.#overLimit.add(socket);
      socket.once('close', () => this.#connections.delete(socket));
    });
    server.on('drop', () => this.#onDrop());
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Malformed or slow HTTP never crashes the daemon: answer when the socket can still take it.
      if (socket.writable) socket.end(this.#clientErrorReply(err));
      else socket.destroy();
      log.debug({ err: err.message, code: err.code }, 'control: client error');
    });
  }

  /** Connections open now (served and over the limit). */
  get count(): number {
    return this.#connections.size;
  }

  /** True for a connection accepted past `maxConnections`. */
  isOverLimit(socket: Socket): boolean {
    return this.#overLimit.has(socket);
  }

  #clientErrorReply(err: NodeJS.ErrnoException): string {
    const l = this.#limits;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      return rawErrorReply(408, 'Request Timeout', 'request_timeout', `request not received within ${l.headersTimeoutMs} ms (headers) / ${l.requestTimeoutMs} ms (whole request)`);
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      return rawErrorReply(431, 'Request Header Fields Too Large', 'bad_request', `request headers are larger than ${MAX_HEADER_BYTES} bytes`);
    }
    return rawErrorReply(400, 'Bad Request', 'bad_request', `malformed HTTP request: ${err.code ?? err.message}`);
  }

  #onDrop(): void {
    this.#dropped++;
    const now = Date.now();
    if (now - this.#lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.#lastDropLog = now;
    this.#log.warn(
      { dropped: this.#dropped, maxConnections: this.#limits.maxConnections, open: this.#connections.size },
      'control: connection limit reached; closing new connections unanswered',
    );
    this.#dropped = 0;
  }
}

/** An error reply written straight to a socket, for errors Node raises before a request exists. */
function rawErrorReply(status: number, reason: string, code: ApiErrorCode, message: string): string {
  const body = `${JSON.stringify({ error: { code, message } } satisfies ApiErrorBody)}\n`;
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
