// The control server over a real unix socket, in-process, with the real route table.
import { lstatSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { consumerRoutes } from '../../src/control/consumer-routes.js';
import { buildRoutes, type AccountsApi } from '../../src/control/routes.js';
import type { ConsumerService } from '../../src/inbox/consumer-service.js';
import { ControlServer, MAX_BODY_BYTES, MAX_JSON_DEPTH } from '../../src/control/server.js';
import { SocketInUseError } from '../../src/control/socket-file.js';
import type { AccountSummary } from '../../src/control/wire.js';
import { EventBus } from '../../src/events/bus.js';
import type { SendGate } from '../../src/outbox/send-gate.js';
import { VERSION, VERSION_HEADER } from '../../src/version.js';
import { httpUnix, makeStaleSocket, openStream, rawUnix } from '../helpers/http-unix.js';
import { DAEMON_INFO, accountSummary } from '../helpers/control-fixtures.js';
import { makeTmpDir } from '../helpers/tmp.js';

const log = pino({ level: 'silent' });
const info = DAEMON_INFO;

const account: AccountSummary = accountSummary();
const notHere = () => {
  throw new Error('not used in this test');
};
const fakeAccounts: AccountsApi = {
  list: () => [account],
  status: notHere,
  add: notHere,
  setPolicy: notHere,
  remove: notHere,
  pair: notHere,
  cancelPairing: notHere,
  reconnect: notHere,
  logout: notHere,
};

let dir: string;
let cleanup: () => void;
let bus: EventBus;
let server: ControlServer;
let sock: string;

async function startServer(socketPath: string): Promise<ControlServer> {
  const s = new ControlServer({
    socketPath,
    log,
    routes: buildRoutes({
      daemonInfo: () => info,
      accounts: fakeAccounts,
      gate: {} as SendGate, // the outbox routes are tested against the daemon
      bus,
      checkConfig: (raw) => {
        JSON.stringify(raw); // as the daemon's check does, which overflows the stack on a deep enough value
        if ((raw as { bad?: boolean }).bad) throw new ConfigError('/c.json', [{ path: 'bad', message: 'unknown key' }]);
      },
    }),
  });
  await s.listen();
  return s;
}

beforeEach(async () => {
  ({ dir, cleanup } = makeTmpDir());
  bus = new EventBus();
  sock = join(dir, 'run', 'ctl.sock');
  server = await startServer(sock);
});
afterEach(async () => {
  await server.close(100);
  cleanup();
});

describe('control socket file', () => {
  it('is 0600 inside a 0700 directory it created', () => {
    expect(lstatSync(sock).isSocket()).toBe(true);
    expect(lstatSync(sock).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
  });

  it('refuses to start when a daemon answers on the path', async () => {
    await expect(startServer(sock)).rejects.toBeInstanceOf(SocketInUseError);
  });

  it('removes a stale socket file nobody listens on', async () => {
    const stale = join(dir, 'stale.sock');
    await makeStaleSocket(stale);
    expect(lstatSync(stale).isSocket()).toBe(true);
    const s2 = await startServer(stale);
    expect((await httpUnix(stale, 'GET', '/v1/status')).status).toBe(200);
    await s2.close(100);
  });

  it('refuses to replace a regular file at the socket path', async () => {
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'x');
    await expect(startServer(file)).rejects.toThrow(/exists and is not a socket/);
  });

  it('rejects a path longer than a unix socket allows, naming it', async () => {
    const long = join(dir, 'x'.repeat(120), 's.sock');
    await expect(startServer(long)).rejects.toThrow(new RegExp(`socket path is \\d+ bytes, longer than the 103 .*: ${long}`));
  });
});

describe('routes', () => {
  it('GET /v1/status returns daemon info, a summary and accounts, with the version header', async () => {
    const r = await httpUnix(sock, 'GET', '/v1/status');
    expect(r.status).toBe(200);
    expect(r.headers[VERSION_HEADER]).toBe(VERSION);
    expect(r.json()).toEqual({
      daemon: info,
      summary: { accounts: 1, byState: { stopped: 1 } },
      accounts: [account],
    });
  });

  it('echoes a valid X-Request-Id and generates one otherwise', async () => {
    expect((await httpUnix(sock, 'GET', '/v1/accounts', undefined, { 'x-request-id': 'abc-1' })).headers['x-request-id']).toBe('abc-1');
    const generated = (await httpUnix(sock, 'GET', '/v1/accounts', undefined, { 'x-request-id': 'bad id!' })).headers['x-request-id'];
    expect(generated).toMatch(/^req_[A-Za-z0-9_-]{12}$/);
  });

  it.each([
    ['unknown route', 'GET', '/v1/nope', undefined, 404, 'not_found', 'no route /v1/nope'],
    ['route outside /v1', 'GET', '/status', undefined, 404, 'not_found', 'no route /status (routes are under /v1/)'],
    ['wrong method', 'DELETE', '/v1/status', undefined, 405, 'method_not_allowed', 'DELETE is not allowed on /v1/status; use GET'],
    ['malformed JSON', 'POST', '/v1/config/check', '{"a": ', 400, 'bad_json', undefined],
    ['empty body where one is needed', 'POST', '/v1/config/check', '', 400, 'bad_request', 'request body must be the config object to check'],
    ['unknown event filter', 'GET', '/v1/events?acount=a', undefined, 400, 'bad_request', 'unknown query parameter "acount" (use account, type, requestId)'],
    ['a parameter named like a prototype', 'GET', '/v1/events?__proto__=a', undefined, 400, 'bad_request', 'unknown query parameter "__proto__" (use account, type, requestId)'],
    ['a parameter on a route that takes none', 'GET', '/v1/me?x=1', undefined, 400, 'bad_request', 'unknown query parameter "x" (this route takes none)'],
  ])('%s -> JSON error, and the server keeps serving', async (_name, method, path, body, status, code, message) => {
    const r = await httpUnix(sock, method, path, body, body !== undefined ? { 'content-type': 'application/json' } : {});
    expect(r.status).toBe(status);
    const err = (r.json() as { error: { code: string; message: string } }).error;
    expect(err.code).toBe(code);
    if (message) expect(err.message).toBe(message);
    else expect(err.message).toMatch(/^request body is not valid JSON: /);
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('names the allowed method in the Allow header on 405', async () => {
    const r = await httpUnix(sock, 'GET', '/v1/config/check');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
  });

  it('HEAD runs a GET route\'s handler, except on a route that hands something out (noHead): 405, the handler never run', async () => {
    const ran: string[] = [];
    const path = join(dir, 'head.sock');
    const s = new ControlServer({
      socketPath: path,
      log,
      routes: [
        { method: 'GET', path: '/v1/plain', handler: () => (ran.push('plain'), { body: { ok: true } }) },
        { method: 'GET', path: '/v1/hands-out', noHead: true, handler: () => (ran.push('hands-out'), { body: { ok: true } }) },
      ],
    });
    await s.listen();
    try {
      expect((await httpUnix(path, 'HEAD', '/v1/plain')).status).toBe(200);
      const refused = await httpUnix(path, 'HEAD', '/v1/hands-out');
      expect(refused.status).toBe(405);
      expect(refused.headers.allow).toBe('GET');
      expect((await httpUnix(path, 'GET', '/v1/hands-out')).status).toBe(200);
      expect(ran).toEqual(['plain', 'hands-out']);
    } finally {
      await s.close(100);
    }
    // The pull read is such a route.
    const routes = consumerRoutes({} as ConsumerService);
    expect(routes.filter((r) => r.noHead).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/inbox/next']);
  });

  it('rejects an oversized body with 413 and keeps serving', async () => {
    const big = `{"x":"${'a'.repeat(MAX_BODY_BYTES)}"}`;
    const r = await httpUnix(sock, 'POST', '/v1/config/check', big, { 'content-type': 'application/json' });
    expect(r.status).toBe(413);
    expect(r.json()).toEqual({ error: { code: 'body_too_large', message: `request body is larger than ${MAX_BODY_BYTES} bytes` } });
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('rejects an oversized chunked body (no Content-Length) with 413', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 10, 'a');
    const r = await httpUnix(sock, 'POST', '/v1/config/check', big, { 'transfer-encoding': 'chunked' });
    expect(r.status).toBe(413);
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('answers garbage that is not HTTP with 400 and keeps serving', async () => {
    const reply = await rawUnix(sock, 'NOT HTTP AT ALL\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('POST /v1/config/check reports problems without applying anything', async () => {
    expect((await httpUnix(sock, 'POST', '/v1/config/check', '{"bad": true}')).json()).toEqual({
      ok: false,
      problems: [{ path: 'bad', message: 'unknown key' }],
    });
    expect((await httpUnix(sock, 'POST', '/v1/config/check', '{}')).json()).toEqual({ ok: true, problems: [] });
  });
});

describe('GET /v1/events', () => {
  it('gives two subscribers with different filters only their own events', async () => {
    const a = await openStream(sock, '/v1/events?account=a');
    const d = await openStream(sock, '/v1/events?type=daemon.*');
    const r = await openStream(sock, '/v1/events?requestId=req-1&account=b');
    // Headers have arrived, so each subscription is registered.
    bus.publish({ type: 'account.state', account: 'a', state: 'open' });
    bus.publish({ type: 'account.state', account: 'b', state: 'open' });
    bus.publish({ type: 'daemon.reload' });
    bus.publish({ type: 'message.queued', account: 'b', requestId: 'req-1' });
    bus.publish({ type: 'message.queued', account: 'b', requestId: 'req-2' });
    bus.publish({ type: 'account.end', account: 'a' });
    bus.publish({ type: 'daemon.end' });
    bus.publish({ type: 'message.sent', account: 'b', requestId: 'req-1' });

    expect((await a.next()) as object).toMatchObject({ type: 'account.state', account: 'a' });
    expect((await a.next()) as object).toMatchObject({ type: 'account.end', account: 'a' });
    expect((await d.next()) as object).toMatchObject({ type: 'daemon.reload' });
    expect((await d.next()) as object).toMatchObject({ type: 'daemon.end' });
    expect((await r.next()) as object).toMatchObject({ type: 'message.queued', requestId: 'req-1' });
    expect((await r.next()) as object).toMatchObject({ type: 'message.sent', requestId: 'req-1' });
    // The last event each one wanted came after every other event, so nothing else can be in flight.
    expect(a.events).toHaveLength(2);
    expect(d.events).toHaveLength(2);
    expect(r.events).toHaveLength(2);
    for (const e of [...a.events, ...d.events, ...r.events] as Array<Record<string, unknown>>) {
      expect(typeof e.at).toBe('string');
      expect(typeof e.seq).toBe('number');
    }
    a.close();
    d.close();
    r.close();
  });

  it('unsubscribes when the client goes away', async () => {
    const s = await openStream(sock, '/v1/events');
    expect(bus.subscriberCount).toBe(1);
    const gone = new Promise<void>((resolve) => {
      const check = () => (bus.subscriberCount === 0 ? resolve() : setImmediate(check));
      check();
    });
    s.close();
    await gone;
    expect(bus.subscriberCount).toBe(0);
  });

  it('ends open streams and removes the socket file on close', async () => {
    const s = await openStream(sock, '/v1/events');
    await server.close(1000);
    expect(() => lstatSync(sock)).toThrow(/ENOENT/);
    expect(bus.subscriberCount).toBe(0);
    s.close();
  });
});

describe('JSON nesting limit (every body)', () => {
  const nested = (depth: number, open = '[', close = ']') => `${open.repeat(depth)}${close.repeat(depth)}`;
  const deepObject = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;
  const json = { 'content-type': 'application/json' };

  // Once a 500: the body parsed, and JSON.stringify in the config check overflowed the stack.
  it.each([
    { name: '100,000 nested arrays', body: nested(100_000) },
    { name: '50,000 nested objects', body: deepObject(50_000) },
    { name: 'one level past the limit', body: nested(MAX_JSON_DEPTH + 1) },
    { name: 'past the limit, then malformed', body: `${'['.repeat(MAX_JSON_DEPTH + 1)}` },
  ])('POST /v1/config/check with $name -> 400 too_deep, and the server keeps serving', async ({ body }) => {
    const r = await httpUnix(sock, 'POST', '/v1/config/check', body, json);
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({
      error: { code: 'too_deep', message: `request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep` },
    });
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('applies to every route that reads a body, before the handler acts on it', async () => {
    // fakeAccounts.add would throw (a 500) if the body reached it.
    const r = await httpUnix(sock, 'POST', '/v1/accounts', `{"id":"x","wsUrl":${nested(1000)}}`, json);
    expect(r.status).toBe(400);
    expect((r.json() as { error: { code: string } }).error.code).toBe('too_deep');
  });

  it('accepts a body exactly at the limit', async () => {
    expect((await httpUnix(sock, 'POST', '/v1/config/check', deepObject(MAX_JSON_DEPTH), json)).json()).toEqual({ ok: true, problems: [] });
  });

  it('does not count brackets inside strings, escaped quotes included', async () => {
    const body = JSON.stringify({ text: `${'['.repeat(5000)} \\" {{{{ "${'{'.repeat(5000)}` });
    expect((await httpUnix(sock, 'POST', '/v1/config/check', body, json)).json()).toEqual({ ok: true, problems: [] });
  });
});

describe('pairing phone numbers share the recipient parser', () => {
  it.each(['1555+0001111', '015550001111', '123'])('refuses %j with 400 naming the field, before touching the account', async (phone) => {
    const r = await httpUnix(sock, 'POST', '/v1/accounts/main/pair', JSON.stringify({ phone }), { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({
      error: { code: 'bad_request', message: `phone: expected an international number with 7-15 digits, got ${JSON.stringify(phone)}` },
    });
  });
});
