// GET /v1/accounts at thousands of accounts: filters by state and pages by id, with `next`, and
// the status table that summarises above a screenful (the real route table and renderer, a fake
// list of 2,500 accounts).
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SCREENFUL, renderStatus } from '../../src/cli/commands/status.js';
import { buildRoutes, type AccountsApi } from '../../src/control/routes.js';
import { ControlServer } from '../../src/control/server.js';
import type { AccountSummary, StatusResponse } from '../../src/control/wire.js';
import { EventBus } from '../../src/events/bus.js';
import type { SendGate } from '../../src/outbox/send-gate.js';
import { OutboxStore } from '../../src/outbox/store.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import { DAEMON_INFO, accountSummary } from '../helpers/control-fixtures.js';
import { httpUnix } from '../helpers/http-unix.js';
import { makeTmpDir } from '../helpers/tmp.js';

const N = 2500;
const summary = (i: number): AccountSummary & { origin: 'config' } => ({
  ...accountSummary({ id: `a${String(i).padStart(5, '0')}`, state: i % 50 === 7 ? 'reconnecting' : i % 250 === 3 ? 'needs_pairing' : 'open' }),
  origin: 'config',
});
// Listed out of id order, as a map of runners would be after adds and removes.
const ALL = Array.from({ length: N }, (_, i) => summary((i * 7919) % N));
const notHere = () => {
  throw new Error('not used here');
};
const accounts: AccountsApi = { list: () => [...ALL], status: notHere, add: notHere, setPolicy: notHere, remove: notHere, pair: notHere, cancelPairing: notHere, reconnect: notHere, logout: notHere };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function server(gate = {} as SendGate): Promise<string> {
  const tmp = makeTmpDir('wal-');
  const sock = join(tmp.dir, 's.sock');
  const s = new ControlServer({ socketPath: sock, log: pino({ level: 'silent' }), routes: buildRoutes({ daemonInfo: () => DAEMON_INFO, accounts, gate, bus: new EventBus(), checkConfig: () => {} }) });
  await s.listen();
  cleanups.push(() => s.close(0), tmp.cleanup);
  return sock;
}

describe('GET /v1/accounts', () => {
  it('without parameters lists every account, as before', async () => {
    const sock = await server();
    const got = await httpUnix(sock, 'GET', '/v1/accounts');
    const res = got.json() as { accounts: AccountSummary[]; next?: string };
    expect(res.accounts).toHaveLength(N);
    expect(res.next).toBeUndefined();
    // The answer is joined from kept entries: its length is announced, and HEAD gets it without a body.
    expect(Number(got.headers['content-length'])).toBe(Buffer.byteLength(got.body));
    const head = await httpUnix(sock, 'HEAD', '/v1/accounts');
    expect([head.status, head.headers['content-length'], head.body]).toEqual([200, got.headers['content-length'], '']);
  });

  it('pages by id with limit and after: every account once, in id order, until no next', async () => {
    const sock = await server();
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = (await httpUnix(sock, 'GET', `/v1/accounts?limit=1000${after ? `&after=${after}` : ''}`)).json() as { accounts: AccountSummary[]; next?: string };
      seen.push(...res.accounts.map((a) => a.id));
      if (!res.next) break;
      expect(res.next).toBe(res.accounts[res.accounts.length - 1]!.id);
      after = res.next;
    }
    expect(seen).toEqual([...ALL.map((a) => a.id)].sort());
  });

  it('filters by state (a list) before paging; bad parameters are 400', async () => {
    const sock = await server();
    const res = (await httpUnix(sock, 'GET', '/v1/accounts?state=reconnecting,needs_pairing&limit=10')).json() as { accounts: AccountSummary[]; next?: string };
    expect(res.accounts).toHaveLength(10);
    expect(new Set(res.accounts.map((a) => a.state))).toEqual(new Set(['reconnecting', 'needs_pairing']));
    const all = (await httpUnix(sock, 'GET', '/v1/accounts?state=reconnecting,needs_pairing')).json() as { accounts: AccountSummary[] };
    expect(all.accounts).toHaveLength(ALL.filter((a) => a.state !== 'open').length);
    for (const bad of ['limit=0', 'limit=x', 'limit=10001', 'sort=id']) expect((await httpUnix(sock, 'GET', `/v1/accounts?${bad}`)).status).toBe(400);
  });
});

describe('the status table above a screenful', () => {
  const status = (list: AccountSummary[]): StatusResponse => ({ daemon: DAEMON_INFO, summary: { accounts: list.length, byState: {} }, accounts: list });
  const cli = { version: '0', configPath: '/c.json', socket: '/s', socketSource: 'flag', configMatchesDaemon: true };
  const target = { configPath: '/c.json', socket: { path: '/s', source: 'flag' } } as never;

  it('lists only the accounts that are not open (at most a screenful), with the total and how to see all', () => {
    const out = renderStatus(status(ALL), cli, target);
    const rows = out.split('\n').filter((l) => /^a\d{5}\s/.test(l));
    expect(rows).toHaveLength(SCREENFUL);
    expect(rows.every((l) => !/\sopen\s/.test(l))).toBe(true);
    expect(out).toContain(`${ALL.filter((a) => a.state !== 'open').length} account(s) not open or degraded, the first ${SCREENFUL}:`);
    expect(out).toContain(`(${N} accounts: --all lists every one`);
    expect(renderStatus(status(ALL), cli, target, Date.now(), { all: true }).split('\n').filter((l) => /^a\d{5}\s/.test(l))).toHaveLength(N);
    expect(renderStatus(status(ALL.slice(0, SCREENFUL)), cli, target).split('\n').filter((l) => /^a\d{5}\s/.test(l))).toHaveLength(SCREENFUL);
  });
});

describe('the status table of a daemon in a cluster', () => {
  const cli = { version: '0', configPath: '/c.json', socket: '/s', socketSource: 'flag', configMatchesDaemon: true };
  const target = { configPath: '/c.json', socket: { path: '/s', source: 'flag' } } as never;
  const owned = (id: string, state: AccountSummary['state'], owner: AccountSummary['owner']): AccountSummary => ({ ...accountSummary({ id, state }), ...(owner ? { owner } : {}) });
  const at = new Date().toISOString();
  const cluster: NonNullable<StatusResponse['cluster']> = {
    daemon: 'd1',
    ttlMs: 10_000,
    storeOk: true,
    daemons: [
      { id: 'd1', host: 'h', pid: 1, socket: '/s', startedAt: at, seenAt: at, stopping: false, live: true, accounts: 1 },
      { id: 'd2', host: 'h', pid: 2, socket: '/t', startedAt: at, seenAt: at, stopping: false, live: true, accounts: 1 },
      { id: 'd3', host: 'h', pid: 3, socket: '/u', startedAt: at, seenAt: at, stopping: false, live: false, accounts: 0 },
    ],
    leases: [],
  };

  it('names this daemon, the live ones and what each holds, and each account\'s owner and its state there', () => {
    const list = [owned('sales', 'stopped', { daemon: 'd2', since: at, expiresAt: at, epoch: 3, state: 'open' }), owned('support', 'open', { daemon: 'd1', since: at, expiresAt: at, epoch: 1, state: 'open' }), owned('spare', 'stopped', { daemon: null, since: null, expiresAt: null, epoch: 4, state: null })];
    const out = renderStatus({ daemon: DAEMON_INFO, summary: { accounts: 3, byState: {} }, cluster, accounts: list }, cli, target);
    expect(out).toContain('cluster   this daemon is d1; 2 live daemon(s): d1 1, d2 1; lease TTL 10s');
    expect(out).toMatch(/ACCOUNT\s.*\sOWNER$/m);
    expect(out).toMatch(/^sales\s+stopped\s.*\sd2 \(open\)$/m);
    expect(out).toMatch(/^support\s+open\s.*\sd1 \(open\)$/m);
    expect(out).toMatch(/^spare\s.*\s-$/m);
  });

  it('says when the shared store does not answer; one host shows no cluster line and no OWNER column', () => {
    const down = renderStatus({ daemon: DAEMON_INFO, summary: { accounts: 0, byState: {} }, cluster: { ...cluster, storeOk: false, error: 'the shared store did not answer: timeout', daemons: [] }, accounts: [] }, cli, target);
    expect(down).toContain('cluster   this daemon is d1; ! the shared store did not answer: timeout');
    expect(down).toContain('! the shared store does not answer: this daemon has fenced its accounts');
    const single = renderStatus({ daemon: DAEMON_INFO, summary: { accounts: 1, byState: {} }, accounts: [accountSummary({ id: 'solo', state: 'open' })] }, cli, target);
    expect(single).not.toContain('cluster');
    expect(single).not.toContain('OWNER');
  });
});

describe('GET /v1/status with an outbox', () => {
  it('each account shows its waiting rows and the totals by state count every row (finished ones and a removed account\'s too), from one read', async () => {
    const tmp = makeTmpDir('wal-db-');
    const db = openStateDb(tmp.dir);
    cleanups.push(() => closeStateDb(db));
    const store = new OutboxStore(db);
    let n = 0;
    const add = (account: string, state: 'queued' | 'held', finished?: 'sent' | 'failed') => {
      const [r] = store.insertMany([
        {
          row: { account, to: '15550002222@s.whatsapp.net', chatType: 'direct', kind: 'message', text: 't', messageId: `ID${++n}`, state, reason: null, idempotencyKey: null, requestId: null, client: null, expiresAt: null },
          audit: { at: 1, account, recipient: 'x', kind: 'message', decision: 'allow', rule: 'default', reason: 'r', stage: 'enqueue', client: null, requestId: null },
        },
      ]);
      if (!r || 'error' in r) throw new Error('insert failed');
      if (finished) db.prepare('UPDATE outbox SET state = ? WHERE id = ?').run(finished, r.row.id);
    };
    const [first, second] = [ALL[0]!.id, ALL[1]!.id];
    add(first, 'queued');
    add(first, 'queued');
    add(first, 'held');
    add(first, 'queued', 'sent');
    add(second, 'queued', 'failed');
    add('removed-long-ago', 'queued');
    const reads = { n: 0 };
    const counting = new Proxy(store, { get: (t, k) => (k === 'countsByAccount' || k === 'countsByState' ? (...a: unknown[]) => (reads.n++, (t[k] as (...x: unknown[]) => unknown).apply(t, a)) : Reflect.get(t, k, t)) });
    const sock = await server({ store: counting } as unknown as SendGate);
    const res = (await httpUnix(sock, 'GET', '/v1/status')).json() as StatusResponse & { accounts: Array<AccountSummary & { queue?: Record<string, number> }> };
    expect(res.outbox?.byState).toEqual({ queued: 3, held: 1, sent: 1, failed: 1 });
    expect(reads.n).toBe(1);
    const queueOf = (id: string) => res.accounts.find((a) => a.id === id)!.queue;
    expect(queueOf(first)).toEqual({ queued: 2, sending: 0, unknown: 0, held: 1 });
    expect(queueOf(second)).toEqual({ queued: 0, sending: 0, unknown: 0, held: 0 });
  });
});
