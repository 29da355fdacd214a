// One daemon's side of account ownership (docs/cluster.md). Every renewal period it says it is
// alive, renews the leases it holds, and moves toward its fair share of the accounts: it takes
// free or expired leases in waves while below its share, and hands accounts over (socket closed
// first, lease released second) while above it.
//
// Self-fencing: a lease renewed by a statement sent at local time t is valid on the database's
// clock until at least t + ttl (the database read its clock after t). The keeper stops an account
// at t + ttl - fenceMargin unless a later renewal succeeded, whatever the database connection is
// doing, so a daemon cut off from the store has closed its sockets before any other daemon can take
// its accounts. This holds while the event loop runs the fence timer within the margin: a stall
// longer than the margin delays it (the loop's delay is measured and alerted on, docs/scale.md).
//
// A callback that throws is reported, never allowed to stop the keeper: the fence timer is armed
// for every held lease before any callback runs, and re-armed whatever a callback does.
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
  /** The accounts this daemon knows of (registered with the cluster at every period; only these are taken). */
  accounts: () => readonly string[];
  /** A lease was granted: start the account. Throwing releases the lease again. */
  onAcquired: (lease: HeldLease) => void;
  /**
   * A lease is lost (not renewed in time, taken, or its hand-over failed): stop the account now.
   * A fenced one says how late its fence ran (a stalled event loop); past the margin, the lease
   * may have expired before the account stopped.
   */
  onLost: (account: string, reason: LossReason, fence?: FenceTiming) => void;
  /** The account is handed over: close its socket; the lease is released only when this resolves. */
  onHandover: (account: string) => Promise<void>;
  /** A period failed (the store is unreachable): for status and alerts. */
  onStoreError?: (err: Error) => void;
  /** A period succeeded after failures. */
  onStoreOk?: () => void;
  /** A callback threw (reported; the keeper goes on). */
  onCallbackError?: (err: Error, callback: 'onAcquired' | 'onLost' | 'onHandover', account: string) => void;
  /** Local monotonic clock (ms). */
  now?: () => number;
  /** Jitter in [0, 1) for a period's start. */
  random?: () => number;
}

/** Why an account's lease was given up without a hand-over. */
export type LossReason = 'fenced' | 'taken' | 'handover failed';

/** How late a fence ran, in ms, against its margin: the lease surely held while lateMs < marginMs. */
export interface FenceTiming {
  lateMs: number;
  marginMs: number;
}

/** Whether a fence ran so late that the lease may have expired before its account stopped. */
export function pastMargin(fence: FenceTiming | undefined): boolean {
  return fence !== undefined && fence.lateMs >= fence.marginMs;
}

type Optional = 'onStoreError' | 'onStoreOk' | 'onCallbackError';
type Settings = Required<Omit<LeaseKeeperOptions, Optional>> & Pick<LeaseKeeperOptions, Optional>;

interface Held extends HeldLease {
  /** Local time until which the lease is surely valid, less the fence margin. */
  fenceAt: number;
  /** A hand-over of this account is under way. */
  handingOver: boolean;
  /** Taken beyond the fair share because it stayed free (no daemon below its share knows it): not handed over as surplus. */
  orphan: boolean;
}

export class LeaseKeeper {
  readonly #o: Settings;
  readonly #held = new Map<string, Held>();
  readonly #handovers = new Set<Promise<void>>();
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

  /** Runs one period now (tests, and after the account list changed); nothing once stopping. */
  async runNow(): Promise<void> {
    if (this.#stopped) return;
    await this.#period();
  }

  /**
   * Stops: every held account is handed over (socket closed, lease released), then the daemon
   * leaves the cluster. The store is not waited for longer than a TTL in all;
   * leases the store cannot be told about expire on their own (their accounts are fenced first).
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    // The store's part of stopping waits one TTL in all: by then an unreachable store has had the leases expire anyway.
    const deadline = this.#o.now() + this.#o.ttlMs;
    const left = () => Math.max(0, deadline - this.#o.now());
    if (this.#running) await withDeadline(this.#running.catch(() => undefined), left());
    // The others stop counting this daemon first, so they do not wait for it to take accounts back.
    await withDeadline(this.#o.store.heartbeat(this.#o.me, this.#o.ttlMs, true).catch(() => undefined), left());
    for (const h of this.#held.values()) if (!h.handingOver) this.#startHandOver(h);
    // Leases are renewed while their sockets close, so a slow close ends released, not fenced; the
    // wait for the hand-overs is bounded too (an account whose close never ends is fenced meanwhile).
    const renewing = setInterval(() => void this.#renew().catch(() => undefined), this.#o.renewEveryMs);
    renewing.unref();
    try {
      await withDeadline(Promise.allSettled([...this.#handovers]), this.#o.ttlMs);
    } finally {
      clearInterval(renewing);
    }
    if (this.#fenceTimer) clearTimeout(this.#fenceTimer);
    this.#fenceTimer = null;
    await withDeadline(this.#o.store.leave(this.#o.me.id).catch(() => undefined), left());
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
      const known = this.#o.accounts();
      await store.register(known);
      // Once stopping, no heartbeat: it would say alive after stop() said stopping (or left).
      if (this.#stopped) return;
      const { liveDaemons, accounts, rank } = await store.heartbeat(me, ttlMs);
      this.#liveDaemons = Math.max(1, liveDaemons);
      await this.#renew();
      if (this.#stopped) return;
      const share = fairShare(accounts, this.#liveDaemons, rank);
      // An account this daemon no longer knows (removed from its config) is handed over, not kept.
      const knownSet = new Set(known);
      for (const h of [...this.#held.values()]) if (!h.handingOver && !knownSet.has(h.account)) this.#startHandOver(h);
      if (this.#held.size < share) {
        const sentAt = this.#o.now();
        const got = await store.acquire(me.id, Math.min(share - this.#held.size, this.#o.waveSize), ttlMs, known);
        const fenceAt = sentAt + ttlMs - this.#o.fenceMarginMs;
        for (const lease of got) this.#granted(lease, fenceAt, false);
      } else {
        // Above the fair share (a daemon joined): hand the surplus over, a wave at a time, outside
        // the period, so renewals go on while sockets close. Orphans last: no other daemon took them.
        const settled = [...this.#held.values()].filter((h) => !h.handingOver).sort((a, b) => Number(a.orphan) - Number(b.orphan));
        const surplus = settled.length - share;
        for (const h of settled.filter((x) => !x.orphan).slice(0, Math.max(0, Math.min(surplus, this.#o.waveSize)))) this.#startHandOver(h);
        // At its share, a daemon still takes an account it knows that has stayed free for two
        // renewal periods: the daemons below their share do not know it (it is in this daemon's
        // config only, as during a rolling config change), and it would otherwise stay dark.
        const sentAt = this.#o.now();
        const orphans = await store.acquire(me.id, this.#o.waveSize, ttlMs, known, 2 * this.#o.renewEveryMs);
        const fenceAt = sentAt + ttlMs - this.#o.fenceMarginMs;
        for (const lease of orphans) this.#granted(lease, fenceAt, true);
      }
      if (this.#failing) {
        this.#failing = false;
        this.#o.onStoreOk?.();
      }
    } catch (err) {
      this.#failing = true;
      this.#o.onStoreError?.(err as Error);
    } finally {
      this.#armFence();
    }
  }

  /** A lease the store granted, at a fence time computed before asking. */
  #granted(lease: HeldLease, fenceAt: number, orphan: boolean): void {
    const { store, me } = this.#o;
    // Answered too late (the lease may already have expired), or after this daemon started stopping: given back.
    if (this.#stopped || this.#o.now() >= fenceAt) {
      void store.release(me.id, lease).catch(() => undefined);
      return;
    }
    // Granted again while still held: the old lease expired on the database's clock (this daemon's
    // timers ran late), so the account stops before it starts again under the new epoch.
    const old = this.#held.get(lease.account);
    if (old) this.#lose(old, 'taken');
    const held: Held = { ...lease, fenceAt, handingOver: false, orphan };
    this.#held.set(lease.account, held);
    this.#armFence();
    try {
      this.#o.onAcquired(lease);
    } catch (err) {
      this.#o.onCallbackError?.(err as Error, 'onAcquired', lease.account);
      // Not started: let another daemon try.
      if (this.#held.get(lease.account) === held) {
        this.#held.delete(lease.account);
        void store.release(me.id, lease).catch(() => undefined);
      }
    }
  }

  async #renew(): Promise<void> {
    if (this.#held.size === 0) return;
    const sentAt = this.#o.now();
    const asked = [...this.#held.values()];
    const renewed = await this.#o.store.renew(this.#o.me.id, asked, this.#o.ttlMs);
    for (const h of asked) {
      if (this.#held.get(h.account) !== h) {
        // Fenced or lost while the renewal was on its way, yet renewed: give it back at once
        // rather than leave it dark for a TTL.
        // After the fence margin, the time its socket was given to close.
        if (renewed.has(h.account)) this.#releaseLater(h);
        continue;
      }
      if (renewed.has(h.account)) h.fenceAt = sentAt + this.#o.ttlMs - this.#o.fenceMarginMs;
      else this.#lose(h, 'taken');
    }
  }

  #releaseLater(lease: HeldLease): void {
    const timer = setTimeout(() => void this.#o.store.release(this.#o.me.id, lease).catch(() => undefined), this.#o.fenceMarginMs);
    timer.unref();
  }

  #startHandOver(h: Held): void {
    h.handingOver = true;
    const p = this.#handOver(h).finally(() => this.#handovers.delete(p));
    this.#handovers.add(p);
  }

  async #handOver(h: Held): Promise<void> {
    try {
      await this.#o.onHandover(h.account);
    } catch (err) {
      this.#o.onCallbackError?.(err as Error, 'onHandover', h.account);
      // The socket may still be open: never released; stopped hard, the lease left to expire.
      if (this.#held.get(h.account) === h) this.#lose(h, 'handover failed');
      return;
    }
    // Only now may another daemon take it; if the lease was fenced meanwhile, it is not ours to release.
    if (this.#held.get(h.account) === h) {
      this.#held.delete(h.account);
      this.#armFence();
      await this.#o.store.release(this.#o.me.id, h).catch(() => undefined);
    }
  }

  #lose(h: Held, reason: LossReason, fence?: FenceTiming): void {
    this.#held.delete(h.account);
    try {
      this.#o.onLost(h.account, reason, fence);
    } catch (err) {
      this.#o.onCallbackError?.(err as Error, 'onLost', h.account);
    }
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
    try {
      const now = this.#o.now();
      for (const h of [...this.#held.values()]) if (h.fenceAt <= now) this.#lose(h, 'fenced', { lateMs: Math.round(now - h.fenceAt), marginMs: this.#o.fenceMarginMs });
    } finally {
      this.#armFence();
    }
  }
}

/**
 * This daemon's share of the accounts: the live daemons in id order take floor(accounts / live)
 * each, and the first (accounts mod live) of them one more, so the shares add up to the accounts
 * (with ceil for every daemon, 4 accounts on 3 daemons could stay 2, 2, 0). Without a rank (a
 * store that does not say), the ceiling.
 */
export function fairShare(accounts: number, live: number, rank?: number): number {
  if (rank === undefined) return Math.ceil(accounts / live);
  return Math.floor(accounts / live) + (rank < accounts % live ? 1 : 0);
}

/** Resolves when `p` does or after `ms`, whichever comes first. */
function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}
