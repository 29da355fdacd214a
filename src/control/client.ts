// The client side of the control socket, used by the CLI. It turns "cannot connect" into advice
// and notices when the daemon runs another version than this client.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { VERSION, VERSION_HEADER } from '../version.js';
import { describeSource, serviceStatusHint, type ResolvedPath } from '../platform/paths.js';
import { CLIENT_HEADER, REQUEST_ID_HEADER } from './server.js';

/** The daemon could not be reached on its socket. */
export class DaemonUnreachableError extends Error {
  readonly socket: ResolvedPath;
  readonly errno: string | undefined;
  constructor(socket: ResolvedPath, errno: string | undefined) {
    const why =
      errno === 'ENOENT'
        ? 'no socket file there'
        : errno === 'ECONNREFUSED'
          ? 'a socket file is there but nothing answers'
          : errno === 'EACCES'
            ? 'permission denied; the socket is 0600 and belongs to the user the daemon runs as'
            : (errno ?? 'unknown error');
    super(
      [
        `cannot reach the wa-supervisor daemon at ${socket.path} (${why}).`,
        `  socket path: ${describeSource(socket.source)}; override with --socket or WA_SUPERVISOR_SOCKET`,
        '  daemon not running? start it in the foreground with: wa-supervisor run --config FILE',
        `  as a service, check: ${serviceStatusHint()}`,
      ].join('\n'),
    );
    this.name = 'DaemonUnreachableError';
    this.socket = socket;
    this.errno = errno;
  }
}

/** The daemon answered with an error status. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A decoded JSON response. */
export interface ApiResponse<T> {
  status: number;
  body: T;
  requestId: string | undefined;
  daemonVersion: string | undefined;
}

/** Options for a client. */
export interface ControlClientOptions {
  socket: ResolvedPath;
  /** Sent as X-WA-Client so audits can name the caller. */
  clientName?: string;
  /** A client's token, sent as `Authorization: Bearer` (required on the client socket). */
  token?: string | undefined;
  /** When the socket refuses (daemon restarting), keep trying this long. */
  retryRefusedMs?: number;
  /** Called once when the daemon's version differs from this client's. */
  onVersionMismatch?: (daemonVersion: string) => void;
}

/** A client for the daemon's control socket. */
export class ControlClient {
  readonly #opts: ControlClientOptions;
  #warned = false;

  constructor(opts: ControlClientOptions) {
    this.#opts = opts;
  }

  /** Sends one request and decodes the JSON reply; non-2xx replies throw ApiError. `signal` aborts it (the connection is closed). */
  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<ApiResponse<T>> {
    return decodeReply<T>(await this.#open(method, path, body, headers, signal));
  }

  /**
   * GETs a raw (non-JSON) body, such as a media file, into `out` (which is not ended), hashing
   * it on the way. Error statuses throw ApiError (their body is JSON); a body shorter than its
   * content-length throws too.
   */
  async download(path: string, out: NodeJS.WritableStream): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: number; sha256: string }> {
    const res = await this.#open('GET', path, undefined, {});
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      const text = await readAll(res);
      let err: { code?: string; message?: string } | undefined;
      try {
        err = (JSON.parse(text) as { error?: typeof err }).error;
      } catch {
        // not JSON
      }
      throw new ApiError(status, err?.code ?? 'error', err?.message ?? `daemon answered ${status}`);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    let cut = false;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
        if (!out.write(chunk)) await once(out, 'drain');
      }
    } catch {
      cut = true; // the connection ended mid-body
    }
    const expected = Number(res.headers['content-length']);
    if (cut || !res.complete || (Number.isFinite(expected) && bytes !== expected)) {
      throw new ApiError(status, 'truncated', `the daemon's answer ended after ${bytes} of ${Number.isFinite(expected) ? expected : '?'} bytes`);
    }
    return { status, headers: res.headers, bytes, sha256: hash.digest('hex') };
  }

  /**
   * POSTs a file's bytes as the raw body (a media upload), streamed from disk, and decodes the
   * JSON reply; non-2xx replies throw ApiError.
   */
  async uploadFile<T>(path: string, file: string): Promise<ApiResponse<T>> {
    const size = statSync(file).size;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({
        socketPath: this.#opts.socket.path,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': size,
          ...(this.#opts.clientName ? { [CLIENT_HEADER]: this.#opts.clientName } : {}),
          ...(this.#opts.token ? { authorization: `Bearer ${this.#opts.token}` } : {}),
        },
      });
      req.once('response', resolve);
      req.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'EACCES' || err.code === 'ENOTSOCK' ? new DaemonUnreachableError(this.#opts.socket, err.code) : err),
      );
      const input = createReadStream(file);
      input.once('error', (err) => req.destroy(err));
      input.pipe(req);
    });
    return decodeReply<T>(res);
  }

  /**
   * Sends one request and answers the raw response, whatever its status, for callers that read
   * the body themselves (the typed client's streams). `signal` aborts the request.
   */
  open(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<IncomingMessage> {
    return this.#open(method, path, opts.body, opts.headers ?? {}, opts.signal);
  }

  /** Opens an NDJSON stream (GET, or POST with a body) and calls onEvent per line until it ends or signal aborts. */
  async stream(
    path: string,
    onEvent: (event: unknown) => void,
    opts: { signal?: AbortSignal; method?: string; body?: unknown; onOpen?: () => void } = {},
  ): Promise<void> {
    const { signal } = opts;
    const res = await this.#open(opts.method ?? 'GET', path, opts.body, {}, signal);
    if ((res.statusCode ?? 0) < 400) opts.onOpen?.();
    if ((res.statusCode ?? 0) >= 400) {
      const text = await readAll(res);
      let err: { code?: string; message?: string } | undefined;
      try {
        err = (JSON.parse(text) as { error?: typeof err }).error;
      } catch {
        // not JSON
      }
      throw new ApiError(res.statusCode ?? 0, err?.code ?? 'error', err?.message ?? text);
    }
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() !== '') onEvent(JSON.parse(line));
        }
      });
      res.on('end', () => resolve());
      res.on('close', () => resolve());
      res.on('error', (err) => (signal?.aborted ? resolve() : reject(err)));
    });
  }

  async #open(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    const deadline = Date.now() + (this.#opts.retryRefusedMs ?? 0);
    for (;;) {
      try {
        const res = await this.#openOnce(method, path, body, headers, signal);
        const v = header(res, VERSION_HEADER);
        if (v && v !== VERSION && !this.#warned) {
          this.#warned = true;
          this.#opts.onVersionMismatch?.(v);
        }
        return res;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ENOTSOCK') {
          throw new DaemonUnreachableError(this.#opts.socket, code);
        }
        throw err;
      }
    }
  }

  #openOnce(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = httpRequest({
        socketPath: this.#opts.socket.path,
        path,
        method,
        headers: {
          ...headers,
          ...(this.#opts.clientName ? { [CLIENT_HEADER]: this.#opts.clientName } : {}),
          ...(this.#opts.token ? { authorization: `Bearer ${this.#opts.token}` } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        ...(signal ? { signal } : {}),
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end(payload);
    });
  }
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A JSON reply as an ApiResponse; error statuses throw ApiError with the daemon's code and message. */
async function decodeReply<T>(res: IncomingMessage): Promise<ApiResponse<T>> {
  const text = await readAll(res);
  const status = res.statusCode ?? 0;
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError(status, 'bad_response', `daemon sent a reply that is not JSON: ${text.slice(0, 200)}`);
  }
  if (status >= 400) {
    const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(status, err?.code ?? 'error', err?.message ?? `daemon answered ${status}`);
  }
  return { status, body: parsed as T, requestId: header(res, REQUEST_ID_HEADER), daemonVersion: header(res, VERSION_HEADER) };
}

/** A response's whole body as text. */
export function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}
