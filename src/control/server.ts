// The control API: HTTP/1.1 over a unix socket. Handlers come from a route table; this file owns
// the plumbing every route shares: method checks, request ids, the version header, bounded JSON
// bodies (json-body.ts), JSON errors, NDJSON streams, the limits of limits.ts, and a graceful close.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Log } from '../log.js';
import type { RouteSchema } from './api-schema/common.js';
import { VERSION, VERSION_HEADER } from '../version.js';
import { HttpError, type ApiErrorBody } from './http-error.js';
import { readJsonBody } from './json-body.js';
import { ConnectionGuard, DEFAULT_LIMITS, httpServerOptions, type ControlLimits } from './limits.js';
import { authenticate, type Caller, type ClientPermission, type ClientSpec, operatorOnly, requirePermission, sameGrant } from './roles.js';
import { prepareSocketPath, type SocketPrep } from './socket-file.js';

export { MAX_BODY_BYTES, MAX_JSON_DEPTH } from './json-body.js';
export { DEFAULT_LIMITS, MAX_HEADER_BYTES, type ControlLimits } from './limits.js';
/** Header a client may set to name itself (recorded in audits) and the request-id header. */
export const CLIENT_HEADER = 'x-wa-client';
export const REQUEST_ID_HEADER = 'x-request-id';

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What a handler sees of one request. */
export interface ApiRequest {
  method: string;
  url: URL;
  /** Values of `:name` segments in the route's path. */
  params: Record<string, string>;
  /** The caller's X-Request-Id when valid, else one generated here; echoed in the response. */
  requestId: string;
  /**
   * Who to record in audits: an authenticated client's name, or for an operator the label it
   * gave itself in X-WA-Client (operators are trusted; a client's own header is ignored).
   */
  clientName: string | undefined;
  /** The caller's role (and, for a client, its accounts and permissions). */
  caller: Caller;
  /** Reads and parses the JSON body (undefined when empty), enforcing MAX_BODY_BYTES and MAX_JSON_DEPTH. */
  json(): Promise<unknown>;
  /** The raw body as it arrives, for routes that take bytes (a media upload); not with json(). */
  body(): AsyncIterable<Buffer>;
  /** A request header's value (the first, when repeated). */
  header(name: string): string | undefined;
  /** Aborted when the client goes away or the server shuts down. */
  signal: AbortSignal;
  /** Starts an NDJSON stream response; the route then writes events until it ends. */
  openStream(): NdjsonStream;
}

/** A JSON reply; handlers that stream return nothing. */
export interface ApiReply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * A reply whose body is bytes rather than JSON (a file). The headers are sent as given, so the
 * handler sets content-type and content-length; a stream is piped and destroyed if the client
 * goes away. A HEAD request gets the headers only.
 */
export interface ApiRawReply {
  status?: number;
  /** A stream, one buffer, or parts sent one after another (the handler's content-length covers them all). */
  raw: Readable | Buffer | readonly Buffer[];
  headers: Record<string, string | number>;
}

/** One entry of the route table. */
export interface Route {
  method: HttpMethod;
  /** Path under the server root, e.g. `/v1/accounts/:id`. */
  path: string;
  handler: (req: ApiRequest) => Promise<ApiReply | ApiRawReply | void> | ApiReply | ApiRawReply | void;
  /**
   * A long-lived subscription (an event stream): counts toward `maxEventSubscribers` for as long
   * as its response is open, and is refused with 503 `too_many_subscribers` at the cap.
   */
  subscriber?: boolean;
  /**
   * The permission a client needs for this route. Routes without one are the operator's; a
   * client is refused them with 403 before the handler runs. Handlers of client routes check the
   * accounts a request touches (roles.ts).
   */
  client?: ClientPermission | 'any';
  /**
   * A GET whose answer hands something out (a pull read moves what can be acknowledged): HEAD is
   * refused with 405 instead of running the handler for an answer nobody sees. Other GET routes
   * answer HEAD by running their handler.
   */
  noHead?: true;
  /**
   * The route's request and answer as zod schemas (api-schema/): its input is parsed with them
   * (request-input.ts `route`), and the OpenAPI document (openapi.ts) is built from them.
   */
  schema?: RouteSchema;
}

/** A response being streamed as newline-delimited JSON, flushed per line. */
export interface NdjsonStream {
  write(value: unknown): boolean;
  end(): void;
  readonly closed: boolean;
  /** Called once when the stream ends for any reason (client gone, server closing, end()). */
  onClose(fn: () => void): void;
  /** Resolves once what was written has been handed to the socket (or the stream closed): pace catch-up with it. */
  drained(): Promise<void>;
}

interface CompiledRoute extends Route {
  segments: string[];
}

/** Per-stream buffered bytes beyond which a subscriber that does not read is cut off. */
const STREAM_HIGH_WATER_BYTES = 8 * 1024 * 1024;

/** The control server. `listen()` prepares the socket file; `close()` drains and removes it. */
export class ControlServer {
  readonly socketPath: string;
  readonly #routes: CompiledRoute[];
  readonly #log: Log;
  readonly #server: Server;
  readonly #streams = new Set<NdjsonStream>();
  /** The caller each open stream was opened for, so a reload can end what a client may no longer read. */
  readonly #streamCallers = new Map<NdjsonStream, Caller>();
  readonly #inflight = new Set<AbortController>();
  readonly #limits: ControlLimits;
  readonly #guard: ConnectionGuard;
  #subscribers = 0;
  #listening = false;

  readonly #kind: 'operator' | 'client';
  readonly #clients: () => readonly ClientSpec[];

  constructor(opts: {
    socketPath: string;
    routes: Route[];
    log: Log;
    limits?: Partial<ControlLimits>;
    /** The operator socket (0600, no token needed) or the client socket (0666, a token on every request). */
    kind?: 'operator' | 'client';
    /** The configured clients, read on every request (a reload applies at once). */
    clients?: () => readonly ClientSpec[];
  }) {
    this.socketPath = opts.socketPath;
    this.#kind = opts.kind ?? 'operator';
    this.#clients = opts.clients ?? (() => []);
    this.#routes = opts.routes.map((r) => ({ ...r, segments: splitPath(r.path) }));
    this.#log = opts.log;
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#limits = limits;
    this.#server = createServer(httpServerOptions(limits), (req, res) => {
      void this.#handle(req, res);
    });
    this.#guard = new ConnectionGuard(this.#server, limits, opts.log);
  }

  /** Connections open now (served and over the limit). */
  get connectionCount(): number {
    return this.#guard.count;
  }

  /** Subscriber routes (event streams) open now. */
  get subscriberCount(): number {
    return this.#subscribers;
  }

  /** Creates the socket (0600, in a 0700 directory) and starts accepting requests. */
  async listen(): Promise<SocketPrep> {
    const client = this.#kind === 'client';
    // Clients are other users: their socket's directory must let them in (0755); the token on
    // every request is what keeps strangers out.
    const prep = await prepareSocketPath(this.socketPath, client ? { dirMode: 0o755 } : {});
    const oldMask = process.umask(client ? 0o111 : 0o177); // born 0600 (0666); chmod below makes sure
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(this.socketPath, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.socketPath, client ? 0o666 : 0o600);
    this.#listening = true;
    return prep;
  }

  /**
   * Stops accepting, ends event streams, lets in-flight requests finish for up to graceMs, then
   * cuts what is left, and removes the socket file.
   */
  async close(graceMs = 5000): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#streams) s.end();
    this.#server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#log.warn({ inflight: this.#inflight.size }, 'control: requests still running at shutdown; cutting them');
      for (const c of this.#inflight) c.abort();
      this.#server.closeAllConnections();
      await closed;
    }
    try {
      if (lstatSync(this.socketPath).isSocket()) unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = pickRequestId(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(VERSION_HEADER, VERSION);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const abort = new AbortController();
    this.#inflight.add(abort);
    res.on('close', () => {
      abort.abort();
      this.#inflight.delete(abort);
    });

    const started = process.hrtime.bigint();
    try {
      if (this.#guard.isOverLimit(req.socket)) {
        res.shouldKeepAlive = false;
        throw new HttpError(
          503,
          'too_many_connections',
          `the control socket already serves ${this.#limits.maxConnections} connections, its limit; close idle ones and retry`,
          { connection: 'close' },
        );
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const { route, params } = this.#match(req.method ?? 'GET', url.pathname);
      const caller = authenticate(headerValue(req.headers.authorization), this.#clients(), this.#kind);
      const what = `${req.method ?? 'GET'} ${route.path}`;
      if (!route.client) operatorOnly(caller, what);
      else if (route.client !== 'any') requirePermission(caller, route.client, what);
      if (route.subscriber && req.method === 'HEAD') {
        // A stream's headers, and no body that never ends.
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' }).end();
        return;
      }
      if (route.subscriber) this.#holdSubscriberSlot(res);
      let bodyRead: Promise<unknown> | undefined;
      const apiReq: ApiRequest = {
        method: req.method ?? 'GET',
        url,
        params,
        requestId,
        clientName: caller.role === 'client' ? caller.name : headerValue(req.headers[CLIENT_HEADER]),
        caller,
        json: () => (bodyRead ??= readJsonBody(req)),
        body: () => req,
        header: (name) => headerValue(req.headers[name.toLowerCase()]),
        signal: abort.signal,
        openStream: () => this.#openStream(res, caller),
      };
      const reply = await route.handler(apiReq);
      if (reply && 'raw' in reply) await sendRaw(res, req.method === 'HEAD', reply);
      else if (reply) sendJson(res, reply.status ?? 200, reply.body, reply.headers);
      else if (!res.headersSent) throw new Error(`route ${route.method} ${route.path} returned no reply`);
    } catch (err) {
      this.#sendError(res, err);
    } finally {
      this.#log.debug(
        { method: req.method, url: req.url, status: res.statusCode, requestId, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'control request',
      );
    }
  }

  /** Counts an open subscriber route until its response closes; throws 503 at the cap. */
  #holdSubscriberSlot(res: ServerResponse): void {
    const max = this.#limits.maxEventSubscribers;
    if (this.#subscribers >= max) {
      this.#log.warn({ max }, 'control: event subscriber limit reached; refusing a new stream');
      throw new HttpError(503, 'too_many_subscribers', `${max} event streams are open, the most the daemon serves; close one (one stream can filter for several accounts and types)`);
    }
    this.#subscribers++;
    res.once('close', () => this.#subscribers--);
  }

  #match(method: string, pathname: string): { route: CompiledRoute; params: Record<string, string> } {
    const segs = splitPath(pathname);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segs);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET' && !route.noHead)) return { route, params };
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${pathname}; use ${allowed.join(' or ')}`, {
        allow: allowed.join(', '),
      });
    }
    throw new HttpError(404, 'not_found', `no route ${pathname}${pathname.startsWith('/v1/') ? '' : ' (routes are under /v1/)'}`);
  }

  /**
   * Ends the open streams of clients whose entry changed or is gone (a reload): a stream was
   * opened with the client's accounts and permissions of that moment, and must not outlive them.
   * The client reconnects and is checked anew (follow and consumer streams resume from a cursor).
   */
  endStaleClientStreams(clients: readonly ClientSpec[]): number {
    let ended = 0;
    for (const [stream, caller] of this.#streamCallers) {
      if (caller.role !== 'client') continue;
      const now = clients.find((c) => c.name === caller.name);
      if (now && sameGrant(caller, now)) continue;
      stream.end();
      ended++;
    }
    if (ended) this.#log.info({ ended }, 'control: ended client streams whose accounts or permissions changed');
    return ended;
  }

  #openStream(res: ServerResponse, caller: Caller): NdjsonStream {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
    const closers: Array<() => void> = [];
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      this.#streams.delete(stream);
      this.#streamCallers.delete(stream);
      for (const fn of closers) fn();
    };
    const stream: NdjsonStream = {
      write: (value) => {
        if (closed) return false;
        if (res.writableLength > STREAM_HIGH_WATER_BYTES) {
          this.#log.warn('control: event subscriber is not reading; closing its stream');
          res.destroy();
          finish();
          return false;
        }
        return res.write(`${JSON.stringify(value)}\n`);
      },
      end: () => {
        if (!closed) res.end();
        finish();
      },
      get closed() {
        return closed;
      },
      onClose: (fn) => {
        if (closed) fn();
        else closers.push(fn);
      },
      drained: () =>
        new Promise<void>((resolve) => {
          if (closed || res.writableLength === 0) return resolve();
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        }),
    };
    res.on('close', finish);
    this.#streams.add(stream);
    this.#streamCallers.set(stream, caller);
    // A reader that left while the handler was still awaiting (its close came before this listener).
    if (res.destroyed || res.socket?.destroyed !== false) finish();
    return stream;
  }

  #sendError(res: ServerResponse, err: unknown): void {
    const httpErr =
      err instanceof HttpError ? err : new HttpError(500, 'internal', 'internal error; the daemon log has the details');
    if (!(err instanceof HttpError)) this.#log.error({ err }, 'control: handler failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body: ApiErrorBody = { error: { code: httpErr.code, message: httpErr.message } };
    sendJson(res, httpErr.status, body, httpErr.headers);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function sendRaw(res: ServerResponse, headOnly: boolean, reply: ApiRawReply): Promise<void> {
  const { raw } = reply;
  const release = () => {
    if (raw instanceof Readable) raw.destroy();
  };
  try {
    res.writeHead(reply.status ?? 200, reply.headers);
  } catch (err) {
    release();
    throw err;
  }
  if (headOnly || Buffer.isBuffer(raw)) {
    release();
    res.end(headOnly ? undefined : raw);
    return;
  }
  if (Array.isArray(raw)) {
    // Parts written as one: a large part kept by the route (the account lists) is not copied.
    res.cork();
    for (const part of raw) res.write(part);
    res.end();
    res.uncork();
    return;
  }
  try {
    await pipeline(raw, res);
  } catch {
    // The client went away or the source failed part-way: the response is cut short.
    res.destroy();
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function matchSegments(pattern: string[], actual: string[]): Record<string, string> | null {
  if (pattern.length !== actual.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const a = actual[i]!;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(a);
      } catch {
        return null;
      }
    } else if (p !== a) return null;
  }
  return params;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

function pickRequestId(header: string | string[] | undefined): string {
  const v = headerValue(header);
  return v && REQUEST_ID_PATTERN.test(v) ? v : `req_${randomBytes(9).toString('base64url')}`;
}

function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}
