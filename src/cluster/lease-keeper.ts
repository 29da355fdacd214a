// One daemon's side of account ownership (docs/cluster.md). Every renewal period it says it is
// alive, renews the leases it holds, and moves toward its fair share of the accounts: it takes
// free or expired leases in waves while below its share, and hands accounts over (socket closed
// first, lease released second) while above it.
//
// Self-fencing: a lease renewed by a statement sent at local time t is valid on the database's
// clock until at least t + ttl (the database read its clock after t). The keeper stops an account
// at t + ttl - fenceMargin unless a later renewal succeeded, whatever the database connection is
// doing, so a daemon cut off from the store has closed its sockets before any other daemon can take
// its accounts.
import type { DaemonInfo, HeldLease, LeaseStore } from './lease-store.js';

export interface LeaseKeeperOptions {
  store: Pick<LeaseStore, 'heartbeat' | 'register' | 'acquire' | 'renew' | 'release' | 'leave'>;
  me: DaemonInfo;
  /** Lease time to live. */
  ttlMs: number;
  /** How often leases are renewed (well inside the TTL). Default ttl / 4. */
  renewEveryMs?: number;
  /** How long before a lease could expire its account is stopped when no renewal succeeded. Default ttl / 4. */
  fenceMarginMs?: number;
  /** Most leases taken per renewal period (a wave); default 50. */
  waveSize?: number;
  /** The accounts this daemon knows of (registered with the cluster at every period). */
  accounts: () => readonly string[];
  /** A lease was granted: start the account. */
  onAcquired: (lease: HeldLease) => void;
  /** A lease is lost (not renewed in time, or taken): stop the account now. */
  onLost: (account: string, reason: 'fenced' | 'taken') => void;
  /** The account is handed over: close its socket; the lease is released when this resolves. */
  onHandover: (account: string) => Promise<void>;
  /** A period failed (the store is unreachable): for status and alerts. */
  onStoreError?: (err: Error) => void;
  /** A period succeeded after failures. */
  onStoreOk?: () => void;
  /** Local monotonic clock (ms). */
  now?: () => number;
  /** Jitter in [0, 1) for a period's start. */
  random?: () => number;
}

type Settings = Required<Omit<LeaseKeeperOptions, 'onStoreError' | 'onStoreOk'>> & Pick<LeaseKeeperOptions, 'onStoreError' | 'onStoreOk'>;

interface Held extends HeldLease {
  /** Local time until which the lease is surely valid, less the fence margin. */
  fenceAt: number;
}

export class LeaseKeeper {
  readonly #o: Settings;
  readonly #held = new Map<string, Held>();
  #timer: NodeJS.Timeout | null = null;
  #fenceTimer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #failing = false;
  #liveDaemons = 1;

  constructor(opts: LeaseKeeperOptions) {
    const renewEveryMs = opts.renewEveryMs ?? Math.floor(opts.ttlMs / 4);
    const fenceMarginMs = opts.fenceMarginMs ?? Math.floor(opts.ttlMs / 4);
    if (renewEveryMs + fenceMarginMs >= opts.ttlMs) throw new Error(`lease renewal every ${renewEveryMs} ms with a fence margin of ${fenceMarginMs} ms does not fit in a TTL of ${opts.ttlMs} ms`);
    this.#o = { waveSize: 50, now: () => performance.now(), random: Math.random, ...opts, renewEveryMs, fenceMarginMs };
  }

  /** The leases held now (a copy). */
  held(): HeldLease[] {
    return [...this.#held.values()].map(({ account, epoch }) => ({ account, epoch }));
  }

  /** The epoch this daemon holds an account's lease at, or undefined. */
  epochOf(account: string): number | undefined {
    return this.#held.get(account)?.epoch;
  }

  /** Live daemons at the last period (this one included). */
  get liveDaemons(): number {
    return this.#liveDaemons;
  }

  /** True while the store cannot be reached. */
  get failing(): boolean {
    return this.#failing;
  }

  /** Runs the first period now and then one every renewal period. */
  start(): Promise<void> {
    this.#stopped = false;
    return this.#period();
  }

  /** Runs one period now (tests, and after the account list changed). */
  async runNow(): Promise<void> {
    await this.#period();
  }

  /**
   * Stops: every held account is handed over (socket closed, lease released), then the daemon
   * leaves the cluster. Leases the store cannot be told about expire on their own.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
    const held = [...this.#held.values()];
    // The others stop counting this daemon first, so they do not wait for it to take accounts back.
    await this.#o.store.heartbeat(this.#o.me, this.#o.ttlMs, true).catch(() => undefined);
    await Promise.all(held.map((h) => this.#handOver(h)));
    if (this.#fenceTimer) clearTimeout(this.#fenceTimer);
    this.#fenceTimer = null;
    await this.#o.store.leave(this.#o.me.id).catch(() => undefined);
  }

  #period(): Promise<void> {
    if (this.#running) return this.#running; // a period still waiting on the store: the fence timer covers it
    this.#running = this.#runPeriod().finally(() => {
      this.#running = null;
      if (!this.#stopped) {
        if (this.#timer) clearTimeout(this.#timer);
        // A little jitter keeps daemons started together from renewing in step.
        this.#timer = setTimeout(() => void this.#period(), this.#o.renewEveryMs * (0.9 + 0.2 * this.#o.random()));
        this.#timer.unref();
      }
    });
    return this.#running;
  }

  async #runPeriod(): Promise<void> {
    const { store, me, ttlMs } = this.#o;
    try {
      await store.register(this.#o.accounts());
      const { liveDaemons, accounts } = await store.heartbeat(me, ttlMs);
      this.#liveDaemons = Math.max(1, liveDaemons);
      await this.#renew();
      if (this.#stopped) return;
      const share = Math.ceil(accounts / this.#liveDaemons);
      if (this.#held.size < share) {
        const sentAt = this.#o.now();
        const got = await store.acquire(me.id, Math.min(share - this.#held.size, this.#o.waveSize), ttlMs);
        for (const lease of got) {
          if (this.#stopped) {
            await store.release(me.id, lease).catch(() => undefined);
            continue;
          }
          this.#held.set(lease.account, { ...lease, fenceAt: sentAt + ttlMs - this.#o.fenceMarginMs });
          this.#o.onAcquired(lease);
        }
        this.#armFence();
      } else if (this.#held.size > share) {
        // Above the fair share (a daemon joined): hand the surplus over, a wave at a time.
        const surplus = [...this.#held.values()].slice(0, Math.min(this.#held.size - share, this.#o.waveSize));
        await Promise.all(surplus.map((h) => this.#handOver(h)));
      }
      if (this.#failing) {
        this.#failing = false;
        this.#o.onStoreOk?.();
      }
    } catch (err) {
      this.#failing = true;
      this.#o.onStoreError?.(err as Error);
    }
  }

  async #renew(): Promise<void> {
    if (this.#held.size === 0) return;
    const sentAt = this.#o.now();
    const asked = [...this.#held.values()];
    const renewed = await this.#o.store.renew(this.#o.me.id, asked, this.#o.ttlMs);
    for (const h of asked) {
      if (this.#held.get(h.account) !== h) continue; // fenced or handed over meanwhile
      if (renewed.has(h.account)) h.fenceAt = sentAt + this.#o.ttlMs - this.#o.fenceMarginMs;
      else this.#lose(h, 'taken');
    }
    this.#armFence();
  }

  async #handOver(h: Held): Promise<void> {
    if (this.#held.get(h.account) !== h) return;
    try {
      await this.#o.onHandover(h.account);
    } finally {
      // Only now may another daemon take it; if the lease was fenced meanwhile, it is not ours to release.
      if (this.#held.get(h.account) === h) {
        this.#held.delete(h.account);
        await this.#o.store.release(this.#o.me.id, h).catch(() => undefined);
      }
    }
  }

  #lose(h: Held, reason: 'fenced' | 'taken'): void {
    this.#held.delete(h.account);
    this.#o.onLost(h.account, reason);
  }

  /** Sets the fence timer to the earliest moment a held lease must be given up. */
  #armFence(): void {
    if (this.#fenceTimer) clearTimeout(this.#fenceTimer);
    this.#fenceTimer = null;
    let earliest = Infinity;
    for (const h of this.#held.values()) earliest = Math.min(earliest, h.fenceAt);
    if (earliest === Infinity) return;
    this.#fenceTimer = setTimeout(() => this.#fence(), Math.max(0, earliest - this.#o.now()));
    this.#fenceTimer.unref();
  }

  #fence(): void {
    const now = this.#o.now();
    for (const h of [...this.#held.values()]) if (h.fenceAt <= now) this.#lose(h, 'fenced');
    this.#armFence();
  }
}
