// Raw HTTP over a unix socket for tests that must send what a well-behaved client never would.
import { createServer, request } from 'node:http';
import { connect } from 'node:net';

/** A response read whole. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => unknown;
}

/** Sends one request over the socket and reads the whole reply. */
export function httpUnix(
  socketPath: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes to the socket and resolves with whatever comes back before it closes. */
export function rawUnix(socketPath: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ path: socketPath });
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (out += d));
    sock.on('end', () => resolve(out));
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
    sock.write(bytes);
  });
}

/** Opens an NDJSON stream; returns the events received so far and a close function, once headers arrive. */
export function openStream(socketPath: string, path: string): Promise<{ events: unknown[]; next: () => Promise<unknown>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const events: unknown[] = [];
    const waiters: Array<(e: unknown) => void> = [];
    let consumed = 0;
    const req = request({ socketPath, method: 'GET', path }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const e = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          events.push(e);
          const w = waiters.shift();
          if (w) {
            consumed++;
            w(e);
          }
        }
      });
      resolve({
        events,
        next: () =>
          consumed < events.length ? Promise.resolve(events[consumed++]) : new Promise<unknown>((r) => waiters.push(r)),
        close: () => req.destroy(),
      });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

/** Leaves a socket file nobody listens on at path, the way a daemon killed with SIGKILL does. */
export async function makeStaleSocket(path: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((r) => holder.stdout!.once('data', r));
  const gone = new Promise((r) => holder.once('exit', r));
  holder.kill('SIGKILL');
  await gone;
}

/**
 * A daemon on a unix socket that takes requests and never answers: `received` resolves when the
 * first request arrives, `hungUp` when the client closes that connection.
 */
export async function silentDaemon(path: string): Promise<{ received: Promise<void>; hungUp: Promise<void>; close: () => Promise<void> }> {
  let arrived!: () => void;
  const received = new Promise<void>((r) => (arrived = r));
  let closed!: () => void;
  const hungUp = new Promise<void>((r) => (closed = r));
  const server = createServer((req) => {
    req.socket.once('close', closed);
    arrived();
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { received, hungUp, close: () => new Promise<void>((r) => server.close(() => r())) };
}
