/**
 * The HTTPS media host `media_conn` points clients at, with a certificate from the emulator's
 * test CA. Upload: `POST /mms/<type>/<fileEncSha256, base64url>?auth=<token>&token=<same hash>`
 * stores the body if the token is one `media_conn` issued and the hash matches, and answers
 * `{url, direct_path}`. Download: `GET <direct path>` returns the stored bytes (a single
 * `Range` is honoured).
 */
import { listenOn } from './listen.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ServerCredentials } from './media-ca.js';
import { sha256 } from './media-crypto.js';
import { MAX_MEDIA_BYTES, type MediaStore, UPLOAD_TYPES, type UploadType } from './media-store.js';

const UPLOAD_PATH = /^\/mms\/([a-z-]+)\/([A-Za-z0-9_-]+)$/;

/** Event log hook: (phone or null, text). */
type Note = (phone: string | null, text: string) => void;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTPS server over a MediaStore. */
export class MediaServer {
  private readonly https: Server;

  constructor(
    private readonly store: MediaStore,
    credentials: ServerCredentials,
    private readonly note: Note,
  ) {
    this.https = createServer({ cert: credentials.cert, key: credentials.key }, (req, res) => {
      this.serve(req, res).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        const message = (error as Error).message ?? String(error);
        this.note(null, `media ${req.method ?? '?'} ${pathOnly(req.url)} refused with ${status}: ${message}`);
        if (!res.headersSent) json(res, status, { error: { code: status, message } });
        else res.destroy();
      });
    });
    // A client that drops its TLS handshake must not become an uncaught error.
    this.https.on('tlsClientError', (error) => this.note(null, `media TLS handshake failed: ${error.message}`));
  }

  /** Binds; resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    return listenOn(this.https, port, host);
  }

  async close(): Promise<void> {
    this.https.closeAllConnections();
    await new Promise<void>((resolve) => this.https.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://media.invalid');
    const upload = UPLOAD_PATH.exec(url.pathname);
    if (req.method === 'POST' && upload) return this.upload(req, res, upload[1]!, upload[2]!, url.searchParams);
    if (req.method === 'GET' && url.pathname.startsWith('/v/')) return this.download(req, res, url.pathname);
    throw new HttpError(404, `no route ${req.method ?? '?'} ${url.pathname}`);
  }

  private async upload(req: IncomingMessage, res: ServerResponse, type: string, hash: string, query: URLSearchParams): Promise<void> {
    if (!(UPLOAD_TYPES as readonly string[]).includes(type)) throw new HttpError(404, `uploads of type "${type}" are not served`);
    const phone = this.store.phoneForAuth(query.get('auth') ?? '');
    if (!phone) throw new HttpError(401, 'auth is not a token media_conn issued');
    if (query.get('token') !== hash) throw new HttpError(400, 'token must repeat the file hash');
    const body = await readBody(req);
    const actual = sha256(body).toString('base64url');
    if (actual !== hash) throw new HttpError(400, `the body hashes to ${actual}, not ${hash}`);
    const hold = this.store.takeHold();
    if (hold === 'before-store') return this.hold(req, phone, `media upload held before storing: ${type}, ${body.length} bytes`);
    const stored = this.store.put(type as UploadType, body, phone);
    this.note(phone, `media uploaded: ${type}, ${body.length} bytes, ${stored.directPath}${stored.tampered ? ' (stored corrupted: tampering armed)' : ''}`);
    if (hold === 'after-store') return this.hold(req, phone, `media upload held after storing ${stored.directPath}`);
    json(res, 200, { url: this.store.urlFor(stored), direct_path: stored.directPath });
  }

  /** Leaves an upload unanswered until its client goes away (or the server closes). */
  private async hold(req: IncomingMessage, phone: string, what: string): Promise<void> {
    this.store.noteHeld();
    this.note(phone, `${what} (a hold armed by a test: no answer until the client goes away)`);
    if (!req.socket.destroyed) await new Promise<void>((resolve) => req.socket.once('close', () => resolve()));
    this.note(phone, 'held media upload ended: its client went away');
  }

  private download(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const stored = this.store.find(pathname);
    if (!stored) throw new HttpError(404, `nothing stored at ${pathname}`);
    if (stored.expired) throw new HttpError(410, `${pathname} has expired (the sender's phone can upload it again)`);
    stored.downloads += 1;
    const { bytes } = stored;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : bytes.length - 1, bytes.length - 1);
      if (start > end) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': end - start + 1 });
      res.end(bytes.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_MEDIA_BYTES) throw new HttpError(413, `larger than ${MAX_MEDIA_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function json(res: ServerResponse, status: number, data: unknown): void {
  const text = JSON.stringify(data);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function pathOnly(url: string | undefined): string {
  return (url ?? '/').split('?')[0]!;
}
