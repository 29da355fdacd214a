// The control server's limits, over a real unix socket with small limits: connections past the
// cap, event streams past the cap, slow headers and bodies, idle keep-alive connections; and the
// long-lived streams, which none of the timeouts may cut.
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PairEvent, PairRequest } from '../../src/accounts/runner.js';
import { buildRoutes, type AccountsApi } from '../../src/control/routes.js';
import { ControlServer, DEFAULT_LIMITS, MAX_HEADER_BYTES, type ControlLimits } from '../../src/control/server.js';
import type { AccountSummary } from '../../src/control/wire.js';
import { EventBus } from '../../src/events/bus.js';
import type { SendGate } from '../../src/outbox/send-gate.js';
import { httpUnix, openStream } from '../helpers/http-unix.js';
import { DAEMON_INFO } from '../helpers/control-fixtures.js';
import { makeTmpDir } from '../helpers/tmp.js';

const info = DAEMON_INFO;
const account = { id: 'main', state: 'needs_pairing' } as AccountSummary;

let dir: string;
let cleanup: () => void;
let bus: EventBus;
let sock: string;
let server: ControlServer | null;
let logLines: Array<Record<string, unknown>>;
let pairRequests: PairRequest[];
const sockets: Socket[] = [];

async function start(limits: Partial<ControlLimits>): Promise<ControlServer> {
  const accounts: AccountsApi = {
    list: () => [account],
    status: () => account,
    add: () => account,
    setPolicy: (_id, policy) => policy,
    remove: async () => {},
    pair: async (_id, req) => {
      pairRequests.push(req);
    },
    cancelPairing: async () => {},
    reconnect: async () => account,
    logout: async () => account,
  };
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
  server = new ControlServer({
    socketPath: sock,
    log,
    limits,
    routes: buildRoutes({ daemonInfo: () => info, accounts, gate: {} as SendGate, bus, checkConfig: () => {} }),
  });
  await server.listen();
  return server;
}

beforeEach(() => {
  ({ dir, cleanup } = makeTmpDir());
  bus = new EventBus();
  sock = join(dir, 'ctl.sock');
  server = null;
  logLines = [];
  pairRequests = [];
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close(100);
  cleanup();
});

/** A raw connection: write bytes, wait for text to arrive, or for the server to close it. */
function rawConnection(): { sock: Socket; received: () => string; waitFor: (re: RegExp) => Promise<string>; closed: Promise<string> } {
  const s = connect({ path: sock });
  sockets.push(s);
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: (t: string) => void }> = [];
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    out += d;
    for (const w of [...waiters]) {
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(out);
      }
    }
  });
  s.on('error', () => {}); // a reset is one of the outcomes under test
  const closed = new Promise<string>((resolve) => s.on('close', () => resolve(out)));
  return {
    sock: s,
    received: () => out,
    waitFor: (re) => (re.test(out) ? Promise.resolve(out) : new Promise((resolve) => waiters.push({ re, resolve }))),
    closed,
  };
}

const STATUS_REQUEST = 'GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n';

/** Resolves once cond() holds, checking after each turn of the event loop (no fixed sleeps). */
function until(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (cond() ? resolve() : setImmediate(check));
    check();
  });
}

function errorOf(reply: string): { code: string; message: string } {
  return (JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } }).error;
}

describe('defaults', () => {
  it('are explicit, not Node’s (no cap, 300 s request timeout)', () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxConnections: 128,
      maxEventSubscribers: 64,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
    });
  });
});

describe('connection limit', () => {
  it('answers a connection past maxConnections with 503 too_many_connections, closes it, and serves again once one is gone', async () => {
    const s = await start({ maxConnections: 2, keepAliveTimeoutMs: 60_000 });
    const a = rawConnection();
    const b = rawConnection();
    a.sock.write(STATUS_REQUEST);
    b.sock.write(STATUS_REQUEST);
    await a.waitFor(/^HTTP\/1\.1 200 /);
    await b.waitFor(/^HTTP\/1\.1 200 /); // both served and kept alive

    const c = rawConnection();
    c.sock.write(STATUS_REQUEST);
    const reply = await c.closed;
    expect(reply).toMatch(/^HTTP\/1\.1 503 /);
    expect(reply).toMatch(/\r\nconnection: close\r\n/i);
    expect(errorOf(reply)).toEqual({
      code: 'too_many_connections',
      message: 'the control socket already serves 2 connections, its limit; close idle ones and retry',
    });

    a.sock.destroy();
    await until(() => s.connectionCount === 1);
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('past twice maxConnections closes new connections unanswered, with a warning in the log', async () => {
    const s = await start({ maxConnections: 1, keepAliveTimeoutMs: 60_000 });
    const held = [rawConnection(), rawConnection()];
    await until(() => s.connectionCount === 2);
    const dropped = rawConnection();
    expect(await dropped.closed).toBe('');
    const warn = logLines.find((l) => l.msg === 'control: connection limit reached; closing new connections unanswered');
    expect(warn).toMatchObject({ level: 40, dropped: 1, maxConnections: 1, open: 2 });
    for (const h of held) h.sock.destroy();
    await until(() => s.connectionCount === 0);
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });
});

describe('event subscriber limit', () => {
  it('answers one stream past maxEventSubscribers with 503 too_many_subscribers, and opens again after one closes', async () => {
    const s = await start({ maxEventSubscribers: 2 });
    const one = await openStream(sock, '/v1/events');
    const two = await openStream(sock, '/v1/events?account=main');
    const r = await httpUnix(sock, 'GET', '/v1/events');
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({
      error: {
        code: 'too_many_subscribers',
        message: '2 event streams are open, the most the daemon serves; close one (one stream can filter for several accounts and types)',
      },
    });
    expect(logLines.some((l) => l.msg === 'control: event subscriber limit reached; refusing a new stream')).toBe(true);
    // Other routes are not affected.
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);

    one.close();
    await until(() => s.subscriberCount === 1 && bus.subscriberCount === 1);
    const three = await openStream(sock, '/v1/events');
    bus.publish({ type: 'account.state', account: 'main' });
    expect(await three.next()).toMatchObject({ type: 'account.state' });
    expect(await two.next()).toMatchObject({ type: 'account.state' });
    two.close();
    three.close();
  });

  it('a refused stream (bad filter) gives its slot back', async () => {
    const s = await start({ maxEventSubscribers: 1 });
    for (let i = 0; i < 3; i++) expect((await httpUnix(sock, 'GET', '/v1/events?nope=1')).status).toBe(400);
    await until(() => s.subscriberCount === 0);
    const one = await openStream(sock, '/v1/events');
    one.close();
  });
});

describe('timeouts', () => {
  it('answers headers that do not arrive within headersTimeoutMs with 408 request_timeout', async () => {
    await start({ headersTimeoutMs: 100, requestTimeoutMs: 200 });
    const slow = rawConnection();
    slow.sock.write('GET /v1/status HTTP/1.1\r\nhost: x\r\n'); // never finishes its headers
    const reply = await slow.closed;
    expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(errorOf(reply).code).toBe('request_timeout');
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('answers a body that does not arrive within requestTimeoutMs with 408 request_timeout', async () => {
    await start({ headersTimeoutMs: 100, requestTimeoutMs: 200 });
    const slow = rawConnection();
    slow.sock.write('POST /v1/config/check HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":');
    const reply = await slow.closed;
    expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(errorOf(reply).code).toBe('request_timeout');
  });

  it('closes an idle keep-alive connection after keepAliveTimeoutMs', async () => {
    await start({ keepAliveTimeoutMs: 100 });
    const c = rawConnection();
    const t0 = Date.now();
    c.sock.write(STATUS_REQUEST);
    await c.waitFor(/^HTTP\/1\.1 200 /);
    await c.closed;
    // Node adds up to a second to the keep-alive timeout; its own default (5 s) would be past 3 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('never cut an event stream or a pairing stream, however long they stay open', async () => {
    await start({ headersTimeoutMs: 100, requestTimeoutMs: 200, keepAliveTimeoutMs: 100 });
    const events = await openStream(sock, '/v1/events');
    const pair = await postStream('/v1/accounts/main/pair', '{}');
    await until(() => pairRequests.length === 1);
    // Both streams are older than a connection the server has timed out since they opened: slow
    // headers, then a slow body, then an idle keep-alive connection.
    const slowHeaders = rawConnection();
    slowHeaders.sock.write('GET /v1/status HTTP/1.1\r\n');
    expect(await slowHeaders.closed).toMatch(/^HTTP\/1\.1 408 /);
    const slowBody = rawConnection();
    slowBody.sock.write('POST /v1/config/check HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{');
    expect(await slowBody.closed).toMatch(/^HTTP\/1\.1 408 /);
    const idle = rawConnection();
    idle.sock.write(STATUS_REQUEST);
    await idle.closed;

    bus.publish({ type: 'daemon.reload' });
    expect(await events.next()).toMatchObject({ type: 'daemon.reload' });
    pairRequests[0]!.onEvent({ type: 'qr', qr: 'QR-1' } satisfies PairEvent);
    expect(await pair.next()).toMatchObject({ type: 'qr', qr: 'QR-1', account: 'main' });
    events.close();
    pair.close();
  });
});

/** POSTs a body and reads the NDJSON response line by line. */
function postStream(path: string, body: string): Promise<{ next: () => Promise<unknown>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const lines: unknown[] = [];
    const waiters: Array<(e: unknown) => void> = [];
    const req = request({ socketPath: sock, method: 'POST', path, headers: { 'content-type': 'application/json' } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const e: unknown = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          const w = waiters.shift();
          if (w) w(e);
          else lines.push(e);
        }
      });
      resolve({
        next: () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r))),
        close: () => req.destroy(),
      });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end(body);
  });
}

describe('request head size', () => {
  it('answers headers over MAX_HEADER_BYTES with 431 and keeps serving', async () => {
    await start({});
    const c = rawConnection();
    c.sock.write(`GET /v1/status HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(MAX_HEADER_BYTES + 1)}\r\n\r\n`);
    const reply = await c.closed;
    expect(reply).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(errorOf(reply)).toEqual({ code: 'bad_request', message: `request headers are larger than ${MAX_HEADER_BYTES} bytes` });
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });
});
