// Account leases on a real PostgreSQL server: migrations raced by several daemons, fair shares,
// fencing by epoch, hand-over on stop, and self-fencing when the store is cut off (a TCP proxy that
// black-holes one daemon's connections).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaseKeeper, type LeaseKeeperOptions } from '../../src/cluster/lease-keeper.js';
import { FencedError, LeaseStore, fencedTx, type HeldLease } from '../../src/cluster/lease-store.js';
import { PG_MIGRATIONS, migratePg } from '../../src/store/pg-migrations.js';
import { ClusterMember } from '../../src/daemon/cluster.js';
import { createPgPool } from '../../src/store/pg-pool.js';
import { silentLog } from '../inbox/support.js';
import { testPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

let server: TestPostgres;
const pools: pg.Pool[] = [];
const keepers: LeaseKeeper[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  server = await testPostgres();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  await Promise.all(keepers.splice(0).map((k) => k.stop().catch(() => undefined)));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  const admin = pool();
  await admin.query('DELETE FROM wa_leases; DELETE FROM wa_daemons;').catch(() => undefined);
  await Promise.all(pools.splice(0).map((p) => p.end().catch(() => undefined)));
});

/** A pool on the server (or through a proxy port), with client-side timeouts as the daemon sets them. */
function pool(port?: number): pg.Pool {
  const url = new URL(server.url);
  if (port) url.port = String(port);
  const p = createPgPool({ url: url.toString(), max: 4, timeoutMs: 1000 });
  pools.push(p);
  return p;
}

/** Resolves when `check` is true, re-checking at each lease event (no fixed sleeps). */
function until(check: () => boolean, events: Array<() => void>, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
    const poll = () => {
      if (check()) {
        clearTimeout(timer);
        resolve();
      }
    };
    events.push(poll);
    poll();
  });
}

interface World {
  id: string;
  keeper: LeaseKeeper;
  owned: Set<string>;
  log: string[];
  /** How late each fence ran, by account (the keeper's own measure). */
  fenceLateMs: Map<string, number>;
}

function daemon(id: string, accounts: string[], o: Partial<LeaseKeeperOptions> & { pool?: pg.Pool } = {}, events: Array<() => void> = []): World {
  const owned = new Set<string>();
  const log: string[] = [];
  const fenceLateMs = new Map<string, number>();
  const keeper = new LeaseKeeper({
    store: new LeaseStore(o.pool ?? pool()),
    me: { id, host: 'test', pid: process.pid, socket: null },
    // Wide enough that a loaded CI machine renews in time; the cut-off test still waits only seconds.
    ttlMs: 3000,
    renewEveryMs: 500,
    fenceMarginMs: 800,
    accounts: () => accounts,
    onAcquired: (l) => {
      owned.add(l.account);
      log.push(`acquired ${l.account}@${l.epoch}`);
      events.forEach((e) => e());
    },
    onLost: (a, reason, fence) => {
      owned.delete(a);
      if (fence) fenceLateMs.set(a, fence.lateMs);
      log.push(`lost ${a} ${reason}`);
      events.forEach((e) => e());
    },
    onHandover: async (a) => {
      owned.delete(a);
      log.push(`handover ${a}`);
      events.forEach((e) => e());
    },
    ...o,
  });
  keepers.push(keeper);
  return { id, keeper, owned, log, fenceLateMs };
}

const ACCOUNTS = Array.from({ length: 30 }, (_, i) => `acct${String(i).padStart(2, '0')}`);

describe('PostgreSQL migrations', () => {
  it('three daemons migrating at once apply each step once; a store newer than the daemon is refused by name', async () => {
    const results = await Promise.all([pool(), pool(), pool()].map((p) => migratePg(p)));
    expect(results.flat()).toEqual(PG_MIGRATIONS.map((m) => m.version));
    const rows = await pool().query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    await expect(migratePg(pool(), PG_MIGRATIONS.slice(0, 0))).rejects.toThrow(`the PostgreSQL store is at schema version ${PG_MIGRATIONS.length}, newer than this daemon knows (0)`);
  });
});

describe('account leases', () => {
  beforeAll(async () => {
    const p = new pg.Pool({ connectionString: server.url });
    await migratePg(p);
    await p.end();
  });

  it('three daemons, 30 accounts: each account owned by exactly one, ten each, at epoch 1', async () => {
    const events: Array<() => void> = [];
    const worlds = ['d1', 'd2', 'd3'].map((id) => daemon(id, ACCOUNTS, {}, events));
    // Started one after another, as hosts do: the first would take everything without fair shares.
    for (const w of worlds) await w.keeper.start();
    await until(() => worlds.every((w) => w.owned.size === 10), events);
    const all = worlds.flatMap((w) => [...w.owned]);
    expect(all.sort()).toEqual(ACCOUNTS);
    const leases = await new LeaseStore(pool()).leases();
    expect(leases.every((l) => l.live)).toBe(true);
    for (const w of worlds) for (const a of w.owned) expect(leases.find((l) => l.account === a)!.owner).toBe(w.id);
    // The first daemon took more than its share before the others came, and handed the surplus over.
    expect(worlds[0]!.log.filter((l) => l.startsWith('handover')).length).toBeGreaterThan(0);
    for (const w of worlds) expect(w.log.filter((l) => l.startsWith('lost'))).toEqual([]);
  });

  it('a write fenced at an old epoch is refused and changes nothing; at the current epoch it is made', async () => {
    const p = pool();
    const store = new LeaseStore(p);
    await store.register(['x']);
    await p.query('CREATE TABLE IF NOT EXISTS fenced_writes (account text, epoch bigint)');
    const [first] = await store.acquire('old-owner', 1, 150, ['x']);
    expect(first).toEqual({ account: 'x', epoch: 1 });
    // Taken by another daemon once it has expired on the database's clock.
    let second: HeldLease | undefined;
    while (!second) [second] = await store.acquire('new-owner', 1, 10_000, ['x']);
    expect(second.epoch).toBe(2);
    const write = (owner: string, lease: HeldLease) => fencedTx(p, owner, lease, (c) => c.query('INSERT INTO fenced_writes VALUES ($1, $2)', [lease.account, lease.epoch]));
    await expect(write('old-owner', first!)).rejects.toBeInstanceOf(FencedError);
    await expect(write('new-owner', { account: 'x', epoch: 1 })).rejects.toThrow(/lease epoch 1 is no longer held/);
    await write('new-owner', second);
    expect((await p.query('SELECT account, epoch FROM fenced_writes')).rows).toEqual([{ account: 'x', epoch: '2' }]);
    // The old owner cannot renew or release what it lost.
    expect([...(await store.renew('old-owner', [first!], 10_000))]).toEqual([]);
    expect(await store.release('old-owner', first!)).toBe(false);
  });

  it('a removed account is not freed under its owner: its renewal fails, no one takes it, and added again it goes on from its last epoch', async () => {
    const store = new LeaseStore(pool());
    await store.register(['r']);
    const [lease] = await store.acquire('owner', 1, 10_000, ['r']);
    await store.unregister('r');
    expect((await store.leases()).find((l) => l.account === 'r')).toMatchObject({ owner: 'owner', live: true });
    expect([...(await store.renew('owner', [lease!], 10_000))]).toEqual([]);
    await pool().query("UPDATE wa_leases SET expires_at = now() - interval '1 second' WHERE account = 'r'");
    expect(await store.acquire('other', 1, 10_000, ['r'])).toEqual([]);
    await store.register(['r']);
    expect(await store.acquire('other', 1, 10_000, ['r'])).toEqual([{ account: 'r', epoch: lease!.epoch + 1 }]);
  });

  it('a lease held by a fenced write cannot be taken until the write commits, even once it has expired', async () => {
    const p = pool();
    const store = new LeaseStore(p);
    await store.register(['y']);
    const [lease] = await store.acquire('writer', 1, 200, ['y']);
    const other = pool();
    let takenInside: HeldLease[] | null = null;
    await fencedTx(p, 'writer', lease!, async () => {
      // Wait, on the database's clock, until the lease has expired; the row stays locked by this transaction.
      while (!(await other.query<{ expired: boolean }>("SELECT expires_at <= now() AS expired FROM wa_leases WHERE account = 'y'")).rows[0]!.expired);
      takenInside = await new LeaseStore(other).acquire('thief', 1, 10_000, ['y']);
    });
    expect(takenInside).toEqual([]);
    expect(await new LeaseStore(other).acquire('thief', 1, 10_000, ['y'])).toEqual([{ account: 'y', epoch: 2 }]);
  });

  it('on stop a daemon hands its accounts over (socket closed before the lease is released) and the others take them', async () => {
    const events: Array<() => void> = [];
    const checkStore = new LeaseStore(pool());
    const ownerWhileClosing: Array<string | null> = [];
    const a: World = daemon(
      'a',
      ACCOUNTS.slice(0, 10),
      {
        onHandover: async (acct) => {
          ownerWhileClosing.push((await checkStore.leases()).find((l) => l.account === acct)!.owner);
          a.owned.delete(acct);
        },
      },
      events,
    );
    const b = daemon('b', ACCOUNTS.slice(0, 10), {}, events);
    await a.keeper.start();
    await b.keeper.start();
    await until(() => a.owned.size === 5 && b.owned.size === 5, events);
    const aHad = [...a.owned];
    ownerWhileClosing.length = 0;
    await a.keeper.stop();
    expect(a.owned.size).toBe(0);
    expect(ownerWhileClosing).toEqual(aHad.map(() => 'a'));
    const leases = await checkStore.leases();
    for (const acct of aHad) expect(leases.find((l) => l.account === acct)).toMatchObject({ owner: null, live: false });
    // b no longer counts a (it said it was stopping, then left), so its share is all ten.
    expect((await checkStore.daemons(5000)).map((d) => d.id)).toEqual(['b']);
    await until(() => b.owned.size === 10, events, 5000);
  });

  it('a daemon whose data pool is held by slow writes, every connection of it, still renews its leases: nothing is fenced', async () => {
    const watcher = pool();
    const backends = async () => Number((await watcher.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'")).rows[0]!.n);
    const before = await backends();
    // TTL 4 s: renewed every second, fenced 3 s after the last renewal sent, so only a data pool
    // that holds the renewals fences (at about 3 s), not a loaded machine's stall of a second or two.
    const member = await ClusterMember.connect({ url: server.url, ttlMs: 4000, daemonId: 'busy', socket: 'none', log: silentLog });
    const events: Array<() => void> = [];
    const started: string[] = [];
    const lost: string[] = [];
    const poke = () => events.forEach((e) => e());
    let held: pg.PoolClient[] = [];
    try {
      await member.start({
        accounts: () => ['busy1', 'busy2'],
        start: async (f) => void (started.push(f.lease.account), poke()),
        stopNow: () => undefined,
        handOver: async () => undefined,
        dropped: () => undefined,
        wake: () => undefined,
        inboxCommitted: () => undefined,
        storeState: () => undefined,
        lost: (account, reason) => void (lost.push(`${account} ${reason}`), poke()),
      });
      await until(() => started.length === 2, events);
      // Every connection of the data pool is taken and kept, as writes stuck behind a lock would.
      held = await Promise.all(Array.from({ length: 16 }, () => member.pool.connect()));
      const expiry = async () => (await watcher.query<{ ms: number }>("SELECT min(extract(epoch FROM expires_at) * 1000)::float8 AS ms FROM wa_leases WHERE owner = 'busy'")).rows[0]!.ms;
      const first = await expiry();
      // Renewed twice over one TTL later, or fenced meanwhile (the failure).
      for (;;) {
        expect(lost).toEqual([]);
        if ((await expiry()) > first + 4000) break;
        await new Promise<void>((r) => {
          events.push(r);
          setTimeout(r, 100);
        });
      }
      expect(lost).toEqual([]);
    } finally {
      for (const c of held) c.release();
      await member.stop();
    }
    // Both of its pools and its listening connection are closed (a server backend leaves
    // pg_stat_activity a moment after its client hung up: asked again until then).
    const deadline = Date.now() + 5000;
    while ((await backends()) !== before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await backends()).toBe(before);
  });

  it('a daemon cut off from the store stops its accounts before their leases expire; another takes them only after', async () => {
    const proxy = await tcpProxy(Number(new URL(server.url).port));
    proxies.push(proxy);
    const events: Array<() => void> = [];
    const cut = daemon('cut', ACCOUNTS.slice(0, 6), { pool: pool(proxy.port), onStoreError: () => events.forEach((e) => e()) }, events);
    await cut.keeper.start();
    await until(() => cut.owned.size === 6, events);
    const watcher = pool();
    // This worker's own loop delay while the fences run (the keeper runs here).
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    proxy.blackhole();
    const wasOwned = [...cut.owned];
    // When each account stopped, on the machine's clock (the database's is the same clock here).
    const lostAt = new Map<string, number>();
    events.push(() => {
      for (const a of wasOwned) if (!cut.owned.has(a) && !lostAt.has(a)) lostAt.set(a, Date.now());
    });
    const origin = cut.log.length;
    await until(() => cut.owned.size === 0, events, 10_000);
    expect(cut.log.slice(origin).sort()).toEqual(wasOwned.map((a) => `lost ${a} fenced`).sort());
    // Each lease was still live on the database's clock when its account stopped.
    const expiries = await watcher.query<{ account: string; ms: number }>("SELECT account, (extract(epoch FROM expires_at) * 1000)::float8 AS ms FROM wa_leases WHERE owner = 'cut'");
    expect(expiries.rows.map((r) => r.account).sort()).toEqual(wasOwned.sort());
    // A fence is late only by as much as this loop stalled; on time it leaves the margin before the
    // expiry, late by more than the margin it still stops within the lateness (the stop is in the fence).
    loop.disable();
    const stall = loop.max / 1e6;
    for (const r of expiries.rows) {
      const late = cut.fenceLateMs.get(r.account)!;
      expect(late, `the fence of ${r.account} ran ${late} ms late; this loop's longest delay was ${stall} ms`).toBeLessThanOrEqual(stall + 100);
      expect(lostAt.get(r.account)!, `${r.account} stopped ${late} ms late`).toBeLessThan(r.ms + late);
    }
    // Another daemon takes them, each only after it expired.
    const other = daemon('other', ACCOUNTS.slice(0, 6), {}, events);
    const acquiredAt = new Map<string, number>();
    events.push(() => {
      for (const a of other.owned) if (!acquiredAt.has(a)) acquiredAt.set(a, Date.now());
    });
    await other.keeper.start();
    await until(() => other.owned.size === 6, events, 10_000);
    for (const r of expiries.rows) expect(acquiredAt.get(r.account)!).toBeGreaterThanOrEqual(Math.floor(r.ms));
  });
});
