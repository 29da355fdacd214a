// A daemon's membership of a cluster (docs/cluster.md): the shared PostgreSQL pool, the lease keeper,
// the fences of the leases held, and what a granted, lost or handed-over lease does to the
// account's runner. A runner runs only while this daemon holds its account's lease.
import { hostname } from 'node:os';
import pg from 'pg';
import type { Pool } from 'pg';
import { LeaseKeeper, type FenceTiming, type LossReason } from '../cluster/lease-keeper.js';
import { LeaseStore, type DaemonInfo, type Fence, type HeldLease } from '../cluster/lease-store.js';
import type { ClusterView } from '../control/wire.js';
import type { Log } from '../log.js';
import { INBOX_CHANNEL } from '../inbox/pg-store.js';
import { OUTBOX_CHANNEL } from '../outbox/pg-store.js';
import { createPgPool } from '../store/pg-pool.js';
import { KeyedQueue } from '../keyed-queue.js';
import { migratePg } from '../store/pg-migrations.js';

/** Default lease time to live. */
export const DEFAULT_LEASE_TTL_MS = 10_000;

/** How long any wait on the store may take: well inside a renewal period, so a hung connection cannot hold a renewal past its fence. */
function storeTimeoutMs(ttlMs: number): number {
  return Math.max(1000, Math.floor(ttlMs / 4));
}

/** What the cluster drives in the rest of the daemon. */
export interface ClusterHooks {
  /** The accounts this daemon may own (the config's). */
  accounts: () => readonly string[];
  /** A lease was granted and its fence is in place: open the auth state, settle rows left in flight, start the runner (failures are the hook's to retry). */
  start: (fence: Fence) => Promise<void>;
  /** The lease is gone: stop the runner at once (no drain; the next owner settles rows in flight). */
  stopNow: (account: string, why: string) => void;
  /** Hand-over: close the socket and put rows in flight back, while the fence still holds. */
  handOver: (account: string) => Promise<void>;
  /** The fence is gone (after stopNow or a finished hand-over): drop what was opened with it. */
  dropped: (account: string) => void;
  /** An account has new rows to send (NOTIFY from any daemon). */
  wake: (account: string) => void;
  /** A daemon committed new inbox rows (NOTIFY): the tail reads them. */
  inboxCommitted: () => void;
  /** The store stopped or started answering. */
  storeState: (ok: boolean, error?: string) => void;
  /** A lease was lost without a hand-over (a fenced one with how late its fence ran). */
  lost: (account: string, reason: LossReason, fence?: FenceTiming) => void;
}

export class ClusterMember {
  readonly pool: Pool;
  readonly me: DaemonInfo;
  readonly ttlMs: number;
  /** Leases as status and state notes read and write them (the data pool). */
  readonly #leases: LeaseStore;
  /** Leases as the keeper renews them, on a pool of its own: a data pool every connection of which a slow write holds cannot starve renewal into fencing. */
  readonly #keeperLeases: LeaseStore;
  readonly #keeperPool: Pool;
  readonly #fences = new Map<string, Fence>();
  readonly #stateWrites = new KeyedQueue();
  readonly #log: Log;
  readonly #url: string;
  #keeper: LeaseKeeper | null = null;
  #hooks: ClusterHooks | null = null;
  #listener: pg.Client | null = null;
  #listenRetry: NodeJS.Timeout | null = null;
  #stopped = false;
  #storeOk = true;

  private constructor(pool: Pool, keeperPool: Pool, me: DaemonInfo, ttlMs: number, url: string, log: Log) {
    this.pool = pool;
    this.#keeperPool = keeperPool;
    this.me = me;
    this.ttlMs = ttlMs;
    this.#url = url;
    this.#leases = new LeaseStore(pool);
    this.#keeperLeases = new LeaseStore(keeperPool);
    this.#log = log;
  }

  /** Connects to the store and migrates it (daemons starting together migrate once). */
  static async connect(opts: { url: string; ttlMs?: number | undefined; daemonId?: string | undefined; socket: string; log: Log }): Promise<ClusterMember> {
    const ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    const pool = createPgPool({ url: opts.url, timeoutMs: storeTimeoutMs(ttlMs), max: 16 });
    try {
      await migratePg(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new Error(`store: the PostgreSQL store cannot be used: ${(err as Error).message}`, { cause: err });
    }
    const id = opts.daemonId ?? `${hostname()}:${process.pid}`;
    // A period's statements run one after another; hand-overs release beside them.
    const keeperPool = createPgPool({ url: opts.url, timeoutMs: storeTimeoutMs(ttlMs), max: 3 });
    return new ClusterMember(pool, keeperPool, { id, host: hostname(), pid: process.pid, socket: opts.socket }, ttlMs, opts.url, opts.log);
  }

  /** The fence of an account this daemon holds, or null. */
  fenceOf(account: string): Fence | null {
    return this.#fences.get(account) ?? null;
  }

  /** The accounts this daemon holds now. */
  owned(): string[] {
    return [...this.#fences.keys()];
  }

  /** True while the store answers the lease keeper. */
  get storeOk(): boolean {
    return this.#storeOk;
  }

  /** Starts taking leases and listening for rows to send. */
  async start(hooks: ClusterHooks): Promise<void> {
    this.#hooks = hooks;
    this.#keeper = new LeaseKeeper({
      store: this.#keeperLeases,
      me: this.me,
      ttlMs: this.ttlMs,
      accounts: hooks.accounts,
      onAcquired: (lease) => this.#acquired(lease),
      onLost: (account, reason, fence) => {
        this.#fences.delete(account);
        hooks.stopNow(account, `lease lost (${reason})`);
        hooks.dropped(account);
        hooks.lost(account, reason, fence);
      },
      onHandover: async (account) => {
        await hooks.handOver(account);
        this.#fences.delete(account);
        hooks.dropped(account);
      },
      onStoreError: (err) => {
        if (!this.#storeOk) return; // said once, until it answers again
        this.#log.error({ err }, 'cluster: the shared store does not answer; leases are not renewed');
        this.#storeOk = false;
        hooks.storeState(false, err.message);
      },
      onStoreOk: () => {
        this.#storeOk = true;
        this.#log.info('cluster: the shared store answers again');
        hooks.storeState(true);
      },
      onCallbackError: (err, callback, account) => this.#log.error({ err, callback, account }, 'cluster: a lease callback failed'),
    });
    await this.#listen();
    await this.#keeper.start();
  }

  /** A lease granted: the fence first (owner-only writes need it), then the account starts. */
  #acquired(lease: HeldLease): void {
    const fence: Fence = { owner: this.me.id, lease };
    this.#fences.set(lease.account, fence);
    this.#log.info({ account: lease.account, epoch: lease.epoch }, 'cluster: lease taken; starting the account');
    void this.#hooks!.start(fence).catch((err: unknown) => this.#log.error({ err, account: lease.account }, 'cluster: starting an account under its new lease failed'));
  }

  /** Records an owned account's connection state beside its lease (status of any daemon shows it). */
  noteState(account: string, state: string): void {
    const fence = this.#fences.get(account);
    if (!fence) return;
    // One account's writes one after another: on two pool connections a later state could commit first.
    this.#stateWrites.run(account, () => this.#leases.noteState(this.me.id, fence.lease, state)).catch(() => undefined);
  }

  /** Runs a lease period now (after the config's accounts changed). */
  async refresh(): Promise<void> {
    await this.#keeper?.runNow();
  }

  /** The whole cluster as the store sees it, and how many accounts each daemon holds. */
  async view(): Promise<ClusterView> {
    let daemons: Awaited<ReturnType<LeaseStore['daemons']>>;
    let leases: Awaited<ReturnType<LeaseStore['leases']>>;
    try {
      [daemons, leases] = await Promise.all([this.#leases.daemons(this.ttlMs), this.#leases.leases()]);
    } catch (err) {
      // Status still answers when the store does not: this daemon's own part, and why the rest is missing.
      return { daemon: this.me.id, ttlMs: this.ttlMs, storeOk: false, error: `the shared store did not answer: ${(err as Error).message}`, daemons: [], leases: [] };
    }
    const held = new Map<string, number>();
    for (const l of leases) if (l.live && l.owner) held.set(l.owner, (held.get(l.owner) ?? 0) + 1);
    const iso = (d: Date | null) => (d ? d.toISOString() : null);
    return {
      daemon: this.me.id,
      ttlMs: this.ttlMs,
      storeOk: this.#storeOk,
      daemons: daemons.map((d) => ({
        id: d.id,
        host: d.host,
        pid: d.pid,
        socket: d.socket,
        startedAt: d.startedAt.toISOString(),
        seenAt: d.seenAt.toISOString(),
        stopping: d.stopping,
        live: d.live,
        accounts: held.get(d.id) ?? 0,
      })),
      leases: leases.map((l) => ({
        account: l.account,
        owner: l.live ? l.owner : null,
        epoch: l.epoch,
        since: l.live ? iso(l.acquiredAt) : null,
        expiresAt: iso(l.expiresAt),
        live: l.live,
        state: l.live ? l.state : null,
      })),
    };
  }

  /** LISTEN for accounts with new rows to send and for new inbox rows; a lost listening connection is opened again (the sweep covers the gap). */
  async #listen(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: storeTimeoutMs(this.ttlMs), keepAlive: true });
    const again = () => {
      if (this.#listener !== client) return;
      this.#listener = null;
      void client.end().catch(() => undefined);
      if (this.#stopped || this.#listenRetry) return;
      this.#listenRetry = setTimeout(() => {
        this.#listenRetry = null;
        void this.#listen();
      }, 1000);
      this.#listenRetry.unref();
    };
    this.#listener = client;
    client.on('error', again);
    client.on('end', again);
    client.on('notification', (n) => {
      if (n.channel === OUTBOX_CHANNEL && n.payload && this.#fences.has(n.payload)) this.#hooks?.wake(n.payload);
      else if (n.channel === INBOX_CHANNEL) this.#hooks?.inboxCommitted();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_CHANNEL}; LISTEN ${INBOX_CHANNEL}`);
    } catch {
      again();
    }
  }

  /** Hands every account over (socket closed, lease released), leaves the cluster, closes the pool. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#listenRetry) clearTimeout(this.#listenRetry);
    const listener = this.#listener;
    this.#listener = null;
    // A black-holed connection never answers the goodbye: not waited for past a second.
    if (listener) await Promise.race([listener.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    await this.#keeper?.stop();
    await Promise.all([this.pool.end().catch(() => undefined), this.#keeperPool.end().catch(() => undefined)]);
  }
}
