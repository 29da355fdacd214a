// Three daemon processes on one PostgreSQL server, thirty accounts on the emulator (docs/cluster.md):
// every account is owned by exactly one daemon, a daemon stopped with SIGTERM hands its accounts
// over in seconds, one killed with -9 has them taken within a lease TTL and the reconnect, and no
// send is lost or shown twice. The emulator counts every 440 (a newer login replacing a live
// session): two daemons driving one account would show there.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/control/client.js';
import type { StatusResponse } from '../../src/control/wire.js';
import { startCluster, type ClusterDaemon, type ClusterWorld } from '../helpers/cluster-world.js';
import { openStream } from '../helpers/http-unix.js';

const ACCOUNTS = 30;
const DEFAULT_TTL_MS = 10_000;

let w: ClusterWorld;
beforeAll(async () => {
  w = await startCluster({ daemons: 3, accounts: ACCOUNTS });
}, 60_000);
afterAll(async () => {
  await w?.close();
}, 60_000);

const peerOf = (account: string) => `1555200${account.slice(3).padStart(4, '0')}`;

/** Every account leased, by live daemons only, `perDaemon` each. */
function balanced(s: StatusResponse, daemons: string[]): boolean {
  const c = s.cluster!;
  if (c.leases.length !== ACCOUNTS || !c.leases.every((l) => l.live && l.owner && daemons.includes(l.owner) && l.state === 'open')) return false;
  const per = ACCOUNTS / daemons.length;
  return daemons.every((d) => c.leases.filter((l) => l.owner === d).length === per);
}

/** Polls `probe` (a process's answer has no event here) until it gives a truthy value, which it returns. */
async function until<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends `n` messages per account through `via`, each with its own idempotency key; returns accepted message ids per peer, in order. */
async function burst(via: ClusterDaemon, tag: string, n: number, onAccepted?: (count: number) => void): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let count = 0;
  for (let i = 0; i < n; i++) {
    await Promise.all(
      w.accounts.map(async (account) => {
        const res = await via.client.request<{ messageId: string }>('POST', '/v1/messages', { account, to: peerOf(account), text: `${tag} ${i}`, idempotencyKey: `${tag}-${account}-${i}` });
        // Peers are per account, and one account's requests go one after another: order is the peer's order.
        out.set(peerOf(account), [...(out.get(peerOf(account)) ?? []), res.body.messageId]);
        onAccepted?.(++count);
      }),
    );
  }
  return out;
}

/** Waits until every accepted id is shown at its peer; then each peer shows exactly the accepted ids, once each, in order. */
async function expectDeliveredOnce(accepted: Map<string, string[]>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const shownIds = (peer: string) => w.emulator.peerMessages(peer).map((m) => m.id);
  const missing = () => [...accepted].flatMap(([peer, ids]) => ids.filter((id) => !shownIds(peer).includes(id)).map((id) => `${peer}:${id}`));
  while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(missing()).toEqual([]);
  for (const [peer, ids] of accepted) {
    const shown = shownIds(peer).filter((id) => ids.includes(id));
    expect(shown).toEqual(ids); // once each, in the order they were accepted
  }
}

describe('three daemons, thirty accounts', () => {
  it('every account is owned by exactly one daemon, all three views agree, each open only at its owner; no 440', async () => {
    const ids = w.daemons.map((d) => d.id);
    // First balance (the first daemon up may take everything, then hands the surplus over), then pairing through each owner.
    await w.until((s) => s.cluster!.leases.length === ACCOUNTS && s.cluster!.daemons.filter((d) => d.live).length === 3 && s.cluster!.daemons.every((d) => d.accounts === ACCOUNTS / 3), 'ten leases each', 60_000);
    await w.pairAll();
    const s = await w.until((x) => balanced(x, ids), 'every account open, ten per daemon');
    const views = await Promise.all(w.daemons.map((d) => w.owners(d)));
    for (const v of views) expect(v).toEqual(views[0]);
    const open = await w.openBy();
    const openAt = new Map<string, string[]>();
    for (const [d, accs] of open) for (const a of accs) openAt.set(a, [...(openAt.get(a) ?? []), d]);
    for (const l of s.cluster!.leases) expect(openAt.get(l.account)).toEqual([l.owner]);
    // Status, the account list and one account, on any daemon, show the owner of each account.
    const accounts = (await w.status(w.daemons[0]!)).accounts;
    expect(accounts.map((a) => a.owner?.daemon).filter((o) => o)).toHaveLength(ACCOUNTS);
    const listed = (await w.daemons[1]!.client.request<{ accounts: Array<{ id: string; owner?: { daemon: string | null; state: string | null } }> }>('GET', '/v1/accounts')).body.accounts;
    for (const l of s.cluster!.leases) expect(listed.find((a) => a.id === l.account)?.owner).toMatchObject({ daemon: l.owner, state: 'open' });
    const one = (await w.daemons[2]!.client.request<{ owner?: { daemon: string | null } }>('GET', `/v1/accounts/${s.cluster!.leases[0]!.account}`)).body;
    expect(one.owner?.daemon).toBe(s.cluster!.leases[0]!.owner);
    expect(w.replaced()).toBe(0);
  });

  it('any daemon accepts a send for any account; its owner sends it; any daemon tells what became of it', async () => {
    const accepted = await burst(w.daemons[0]!, 'any', 1);
    await expectDeliveredOnce(accepted);
    expect(w.replaced()).toBe(0);
    // The journal of our messages' states is the cluster's: read through another daemon, each
    // message's changes in order, from queued on, whichever daemon made them.
    const ids = new Set([...accepted.values()].flat());
    const journal = async () => (await w.daemons[1]!.client.request<{ changes: Array<{ messageId: string; state: string; cursor: string }> }>('GET', '/v1/messages/changes?limit=1000')).body.changes.filter((c) => ids.has(c.messageId));
    const changes = await until(async () => {
      const all = await journal();
      return [...ids].every((id) => all.some((c) => c.messageId === id && c.state === 'delivered')) ? all : undefined;
    }, 'every accepted message journalled as delivered');
    for (const id of ids) expect(changes.filter((c) => c.messageId === id).map((c) => c.state).slice(0, 3)).toEqual(['queued', 'sent', 'delivered']);
    // A send that waits, through a daemon that does not own the account: it follows the row in the
    // store (the owner's events are on the owner's bus) and ends once it is delivered.
    const via = w.daemons[1]!;
    const account = [...(await w.owners(via))].find(([, o]) => o !== via.id)![0];
    const seen: Array<{ type: string; state?: string }> = [];
    await via.client.stream('/v1/messages?wait=delivered', (e) => void seen.push(e as { type: string; state?: string }), {
      method: 'POST',
      body: { account, to: peerOf(account), text: 'waited for through another daemon' },
    });
    expect(seen[0]?.type).toBe('accepted');
    expect(seen.at(-1)).toMatchObject({ type: 'message.delivered', state: 'delivered' });
    expect(seen.map((e) => e.state).filter((x) => x === 'delivered')).toHaveLength(1);
  });

  it('the inbox is shared: a message its owner stored is read, streamed and acknowledged through any daemon, and published on every daemon', async () => {
    const [d1, d2, d3] = [w.daemons[0]!, w.daemons[1]!, w.daemons[2]!];
    const account = [...(await w.owners(d1))].find(([, o]) => o === d3.id)![0];
    await d1.client.request('POST', '/v1/consumers', { name: 'shared-bot', type: 'stream', accounts: [account] });
    const reader = await openStream(d2.socket, '/v1/inbox/stream?consumer=shared-bot');
    // One reader per consumer in the whole cluster: a second, on another daemon, is refused.
    const second = await d1.client.request('GET', '/v1/inbox/stream?consumer=shared-bot').catch((err: unknown) => err);
    expect(second).toBeInstanceOf(ApiError);
    expect((second as ApiError).status).toBe(409);
    const sent = await w.emulator.sendInbound({ from: peerOf(account), to: w.phoneOf(account), text: 'one shared inbox' });
    // Stored by the owner (d3), streamed by d2.
    const row = (await reader.next()) as { cursor: string; id: string; account: string; text: string };
    expect(row).toMatchObject({ id: sent.id, account, text: 'one shared inbox' });
    // Every daemon reads the same row at the same cursor, and published it on its own event stream.
    for (const d of w.daemons) {
      const rows = (await d.client.request<{ messages: Array<{ id: string; cursor: string }> }>('GET', `/v1/inbox?account=${account}`)).body.messages;
      expect(rows.filter((m) => m.id === sent.id)).toEqual([expect.objectContaining({ cursor: row.cursor })]);
    }
    for (const d of w.daemons) await until(() => d.events.some((e) => e.type === 'message.inbound' && e.id === sent.id), `message.inbound on ${d.id}`);
    // Acknowledged through the reader's daemon; the committed cursor is the cluster's.
    await d2.client.request('POST', '/v1/inbox/ack', { consumer: 'shared-bot', cursor: row.cursor });
    expect((await d1.client.request<{ cursor: string; lag: { unacknowledged: number } }>('GET', '/v1/consumers/shared-bot')).body).toMatchObject({ cursor: row.cursor, lag: { unacknowledged: 0 } });
    // The reader gone, its lock is released: a reader on another daemon is let in.
    reader.close();
    const opened = new AbortController();
    await until(
      () =>
        new Promise<boolean>((resolve) => {
          d1.client.stream('/v1/inbox/stream?consumer=shared-bot', () => undefined, { signal: opened.signal, onOpen: () => resolve(true) }).catch(() => resolve(false));
        }),
      'a reader on d1 once the first left',
    );
    opened.abort();
    await d1.client.request('DELETE', '/v1/consumers/shared-bot');
  });

  it('a webhook consumer is delivered by one daemon at a time: every message POSTed once, with three daemons able to', async () => {
    const posts: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        posts.push(req.headers['x-wa-supervisor-delivery'] as string);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      // In every daemon's config (a SIGHUP each): all three apply it at once, and all three try to deliver it.
      for (const d of w.daemons) {
        const config = JSON.parse(readFileSync(d.configFile, 'utf8')) as Record<string, unknown>;
        writeFileSync(d.configFile, JSON.stringify({ ...config, consumers: [{ name: 'shared-hook', type: 'webhook', url, secret: 'a-secret-of-sixteen+' }] }));
        const reloads = d.events.filter((e) => e.type === 'daemon.reloaded').length;
        process.kill(d.process!.pid, 'SIGHUP');
        await until(() => d.events.filter((e) => e.type === 'daemon.reloaded').length > reloads, `${d.id} reloaded`);
      }
      // Messages to accounts of each daemon; stored by three owners.
      const owners = await w.owners(w.daemons[0]!);
      const targets = w.daemons.flatMap((d) => [...owners].filter(([, o]) => o === d.id).slice(0, 3).map(([a]) => a));
      expect(targets).toHaveLength(9);
      await Promise.all(targets.map((a) => w.emulator.sendInbound({ from: peerOf(a), to: w.phoneOf(a), text: `hook ${a}` })));
      // Stored (by their owners), then nothing left to deliver in any daemon's view.
      const stored = await until(async () => {
        const rows = (await w.daemons[0]!.client.request<{ messages: Array<{ id: string; text: string }> }>('GET', '/v1/inbox?limit=1000')).body.messages;
        return targets.every((a) => rows.some((m) => m.text === `hook ${a}`)) ? rows : undefined;
      }, 'the nine messages stored');
      for (const d of w.daemons) {
        await until(async () => (await d.client.request<{ lag: { unacknowledged: number } }>('GET', '/v1/consumers/shared-hook')).body.lag.unacknowledged === 0, `shared-hook delivered, seen from ${d.id}`);
      }
      // Every readable row since the consumer's cursor 0 (the earlier tests' too), POSTed once each: no second daemon delivered it too.
      expect(new Set(posts).size).toBe(stored.length);
      expect(posts).toHaveLength(stored.length);
      for (const d of w.daemons) {
        const config = JSON.parse(readFileSync(d.configFile, 'utf8')) as Record<string, unknown>;
        writeFileSync(d.configFile, JSON.stringify({ ...config, consumers: [] }));
        process.kill(d.process!.pid, 'SIGHUP');
      }
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });

  it('SIGTERM: the daemon hands its accounts over (socket closed, lease released), they open elsewhere within seconds; sends across the move arrive once; no 440', async () => {
    const [d1, d2] = [w.daemons[0]!, w.daemons[1]!];
    const before = await w.owners(d2);
    const moving = [...before].filter(([, o]) => o === d1.id).map(([a]) => a);
    expect(moving).toHaveLength(ACCOUNTS / 3);
    // Sends through a daemon that stays, racing the hand-over.
    const sending = burst(d2, 'term', 3);
    const t0 = Date.now();
    await w.kill(d1, 'SIGTERM');
    const s = await w.until((x) => balanced(x, [w.daemons[1]!.id, w.daemons[2]!.id]), 'the stopped daemon’s accounts open on the other two', 30_000, d2);
    const movedInMs = Date.now() - t0;
    expect(s.cluster!.daemons.find((d) => d.id === d1.id)).toBeUndefined(); // it left the cluster
    expect(movedInMs).toBeLessThan(DEFAULT_TTL_MS); // handed over, not waited out
    await expectDeliveredOnce(await sending);
    expect(w.replaced()).toBe(0);
    // It comes back and takes its share again.
    await w.start(d1);
    await w.until((x) => balanced(x, w.daemons.map((d) => d.id)), 'ten each again', 60_000, d2);
    expect(w.replaced()).toBe(0);
  });

  it('kill -9 during a send burst: its accounts open elsewhere within the lease TTL and the reconnect; every accepted message arrives once; inbound sent meanwhile is stored once', async () => {
    const [d1, d3] = [w.daemons[0]!, w.daemons[2]!];
    const owned = [...(await w.owners(d1))].filter(([, o]) => o === d3.id).map(([a]) => a);
    expect(owned.length).toBeGreaterThan(0);
    let killedAt = 0;
    let killing: Promise<void> | undefined;
    const accepted = await burst(d1, 'kill', 4, (n) => {
      if (n === ACCOUNTS * 2 && !killing) {
        killedAt = Date.now();
        killing = w.kill(d3, 'SIGKILL');
      }
    });
    await killing;
    // Inbound for the dead daemon's accounts: waits at the server until the new owner connects.
    const inbound = await Promise.all(owned.map((a) => w.emulator.sendInbound({ from: peerOf(a), to: w.phoneOf(a), text: `while down ${a}` })));
    await w.until((x) => balanced(x, [d1.id, w.daemons[1]!.id]), 'the killed daemon’s accounts open on the other two', DEFAULT_TTL_MS + 20_000, d1);
    const takenInMs = Date.now() - killedAt;
    expect(takenInMs).toBeLessThan(DEFAULT_TTL_MS + 5_000 + 5_000); // TTL + a renewal period + the reconnect
    await expectDeliveredOnce(accepted);
    // Each inbound message is in the shared inbox once, whichever daemon is asked.
    for (const [i, a] of owned.entries()) {
      const id = inbound[i]!.id;
      for (const d of [d1, w.daemons[1]!]) {
        const copies = async () => (await d.client.request<{ messages: Array<{ id: string }> }>('GET', `/v1/inbox?account=${a}`)).body.messages.filter((m) => m.id === id).length;
        await until(async () => (await copies()) > 0, `${id} in the inbox, through ${d.id}`, 20_000);
        expect(await copies()).toBe(1);
      }
    }
    expect(w.replaced()).toBe(0);
  });

  it('a reload that adds an account gets it a lease on one daemon; removed from that daemon’s config alone, it is handed to another', async () => {
    const live = [w.daemons[0]!, w.daemons[1]!]; // d3 was killed above
    const edit = (d: ClusterDaemon, change: (accounts: Array<{ id: string }>) => Array<{ id: string }>) => {
      const config = JSON.parse(readFileSync(d.configFile, 'utf8')) as { accounts: Array<{ id: string }> };
      writeFileSync(d.configFile, JSON.stringify({ ...config, accounts: change(config.accounts) }));
      process.kill(d.process!.pid, 'SIGHUP');
    };
    const wsUrl = w.emulator.url;
    for (const d of live) edit(d, (accounts) => [...accounts, { id: 'acc31', wsUrl } as { id: string }]);
    const leaseOf = (s: StatusResponse) => s.cluster!.leases.find((l) => l.account === 'acc31');
    const added = await w.until((s) => !!leaseOf(s)?.live && leaseOf(s)?.state === 'needs_pairing', 'acc31 leased and started (waiting for pairing)', 20_000, live[0]);
    const first = leaseOf(added)!.owner!;
    const owner = live.find((d) => d.id === first)!;
    const other = live.find((d) => d.id !== first)!;
    edit(owner, (accounts) => accounts.filter((a) => a.id !== 'acc31'));
    const moved = await w.until((s) => leaseOf(s)?.live === true && leaseOf(s)?.owner === other.id && leaseOf(s)?.state === 'needs_pairing', 'acc31 handed to the daemon that still lists it', 20_000, other);
    expect(leaseOf(moved)!.epoch).toBeGreaterThan(leaseOf(added)!.epoch);
    // The daemon that dropped it no longer lists it, and nothing else moved.
    expect((await owner.client.request<{ accounts: Array<{ id: string }> }>('GET', '/v1/accounts')).body.accounts.map((a) => a.id)).not.toContain('acc31');
    // Taking it put that daemon above its share: it hands another account over, which opens again.
    await w.until((s) => s.cluster!.leases.filter((l) => l.account !== 'acc31').every((l) => l.live && l.state === 'open'), 'every other account open again', 30_000, other);
    expect(w.replaced()).toBe(0);
  });
});
