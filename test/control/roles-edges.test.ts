// The operator/client boundary at unit level: the control server with the real route table on a
// client socket, a real event bus, and a client list the test changes as a reload would.
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpError } from '../../src/control/http-error.js';
import { authenticate, tokenSha256, type ClientSpec } from '../../src/control/roles.js';
import { buildRoutes, type AccountsApi } from '../../src/control/routes.js';
import { ControlServer } from '../../src/control/server.js';
import { EventBus } from '../../src/events/bus.js';
import type { SendGate } from '../../src/outbox/send-gate.js';
import { DAEMON_INFO } from '../helpers/control-fixtures.js';
import { makeTmpDir } from '../helpers/tmp.js';

const log = pino({ level: 'silent' });
const TOKEN = 'wst_unit-token-0123456789';
const OTHER = 'wst_unit-other-0123456789';
const info = DAEMON_INFO;
const notHere = () => {
  throw new Error('not used in this test');
};
const fakeAccounts: AccountsApi = { list: () => [], status: notHere, add: notHere, setPolicy: notHere, remove: notHere, pair: notHere, cancelPairing: notHere, reconnect: notHere, logout: notHere };

let dir: string;
let cleanup: () => void;
let bus: EventBus;
let server: ControlServer;
let sock: string;
let clients: { list: ClientSpec[] };

beforeEach(async () => {
  ({ dir, cleanup } = makeTmpDir());
  bus = new EventBus();
  sock = join(dir, 'c', 'clients.sock');
  clients = {
    list: [
      { name: 'duo', tokenSha256: tokenSha256(TOKEN), accounts: ['a', 'b'] },
      { name: 'other', tokenSha256: tokenSha256(OTHER), accounts: ['b'] },
    ],
  };
  server = new ControlServer({
    socketPath: sock,
    log,
    kind: 'client',
    clients: () => clients.list,
    routes: buildRoutes({ daemonInfo: () => info, accounts: fakeAccounts, gate: {} as SendGate, bus, checkConfig: () => {} }),
  });
  await server.listen();
});
afterEach(async () => {
  await server.close(100);
  cleanup();
});

/** An NDJSON stream as a client with a token reads it; `until` resolves on a matching line or when the stream ends. */
function openStream(path: string, token: string): Promise<{ lines: Array<Record<string, unknown>>; closed: () => boolean; until: (pred: (e: Record<string, unknown>) => boolean) => Promise<'seen' | 'closed'>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const lines: Array<Record<string, unknown>> = [];
    const waiters = new Set<() => void>();
    let closed = false;
    const req = request({ socketPath: sock, method: 'GET', path, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      const done = () => {
        closed = true;
        for (const w of [...waiters]) w();
      };
      res.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
          buf = buf.slice(nl + 1);
          for (const w of [...waiters]) w();
        }
      });
      res.on('end', done);
      res.on('close', done);
      resolve({
        lines,
        closed: () => closed,
        until: (pred) =>
          new Promise((r) => {
            const check = () => {
              if (lines.some(pred)) {
                waiters.delete(check);
                r('seen');
              } else if (closed) {
                waiters.delete(check);
                r('closed');
              }
            };
            waiters.add(check);
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

/** Waits until the bus has the given number of subscribers (a stream's subscription is made after its headers go out). */
async function subscribers(n: number): Promise<void> {
  while (bus.subscriberCount < n) await new Promise((r) => setImmediate(r));
}

describe('tokens', () => {
  it('on the operator socket, an Authorization header with an empty or malformed Bearer token is refused, not taken for the operator', () => {
    // An operator trying "what the agent may do" with a mistyped token must not silently get everything.
    for (const header of ['Bearer', 'Bearer ', `Bearer ${TOKEN} extra`]) {
      let err: unknown;
      try {
        authenticate(header, clients.list, 'operator');
      } catch (e) {
        err = e;
      }
      expect({ header, status: err instanceof HttpError ? err.status : 'none (operator)' }).toEqual({ header, status: 401 });
    }
  });

  it('on the client socket: empty Bearer is 401; spaces, a tab and a lower-case scheme are the same token; case matters in the token', () => {
    expect(() => authenticate('Bearer ', clients.list, 'client')).toThrow(HttpError);
    expect(() => authenticate('Bearer', clients.list, 'client')).toThrow(HttpError);
    expect(authenticate(`bearer   ${TOKEN}  `, clients.list, 'client')).toMatchObject({ role: 'client', name: 'duo' });
    expect(authenticate(`Bearer\t${TOKEN}`, clients.list, 'client')).toMatchObject({ role: 'client', name: 'duo' });
    expect(() => authenticate(`Bearer ${TOKEN.toUpperCase()}`, clients.list, 'client')).toThrow(HttpError);
  });
});

describe('a reload that changes a client while its event stream is open', () => {
  it('stops delivering an account the client lost', async () => {
    const s = await openStream('/v1/events', TOKEN);
    await subscribers(1);
    clients.list = [{ ...clients.list[0]!, accounts: ['a'] }, clients.list[1]!]; // SIGHUP: duo keeps only a
    server.endStaleClientStreams(clients.list); // what the daemon's reload does
    bus.publish({ type: 'message.queued', account: 'b', id: 1 });
    bus.publish({ type: 'message.queued', account: 'a', id: 2 }); // marker: arrives after b's on the same stream
    // the stream opened under the old grant ends; b's event never reaches it
    expect(await s.until((e) => e.id === 2)).toBe('closed');
    s.close();
    expect(s.lines.filter((e) => e.account === 'b')).toEqual([]);
  });

  it('stops delivering to a client whose token was removed', async () => {
    const s = await openStream('/v1/events', OTHER);
    await subscribers(1);
    clients.list = [clients.list[0]!]; // SIGHUP: "other" is gone
    server.endStaleClientStreams(clients.list); // what the daemon's reload does
    bus.publish({ type: 'message.queued', account: 'b', id: 7 });
    const outcome = await s.until((e) => e.id === 7);
    s.close();
    expect(outcome).toBe('closed');
  });
});

describe('HEAD on a stream route', () => {
  it('answers and ends, so the connection (and its subscriber slot) is not held by a body that never comes', async () => {
    // Connection: close: the server closes the socket once the response is complete.
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect({ path: sock });
      let out = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => (out += d));
      c.on('end', () => resolve(out));
      c.on('error', reject);
      c.write(`HEAD /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\nconnection: close\r\n\r\n`);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(server.subscriberCount).toBe(0);
  }, 5000);
});
