// Turns what the daemon publishes (account states, closes, stale probes, message states) and what a
// periodic look at the outbox finds into alert conditions. Also runs the scheduled digest and the
// hourly housekeeping.
import { schedule, type ScheduledTask } from 'node-cron';
import type { BusEvent, EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import type { OutboxBackend } from '../outbox/backend.js';
import type { AlertEngine } from './engine.js';

/** Stale probes within this window that make `stale_repeating`. */
export const STALE_WINDOW_MS = 10 * 60_000;
export const STALE_COUNT = 3;
/** Retry receipts (recipients that could not decrypt a message) within the same window that make `retries_repeating`. */
export const RETRY_COUNT = 5;
/** A queued row older than this while its account is open makes `queue_stuck`. */
export const QUEUE_STUCK_MS = 5 * 60_000;
/** An unknown row older than this makes `unknown_unsettled`. */
export const UNKNOWN_UNSETTLED_MS = 10 * 60_000;
/** Finished outbox rows older than this are pruned by housekeeping. */
export const RETAIN_FINISHED_MS = 30 * 24 * 3_600_000;
const CHECK_INTERVAL_MS = 15_000;

const NO_ROWS = { count: 0, oldestCreatedAt: null, oldestUpdatedAt: null } as const;

const TERMINAL = new Set(['needs_pairing', 'conflict', 'forbidden']);

/** Wires the engine to the daemon. */
export class AlertMonitor {
  readonly #engine: AlertEngine;
  readonly #store: OutboxBackend;
  readonly #log: Log;
  readonly #states = new Map<string, { state: string; lastClose: string | null }>();
  readonly #stale = new Map<string, number[]>();
  readonly #retries = new Map<string, number[]>();
  readonly #unsubscribe: () => void;
  #timer: NodeJS.Timeout | null = null;
  readonly #tasks: ScheduledTask[] = [];
  #digestSince = Date.now();
  #raisedAtLastDigest = 0;

  readonly #accounts: () => Array<{ id: string; state: string; connectedSince: string | null; closesByCode: Record<string, number> }>;

  constructor(opts: {
    engine: AlertEngine;
    bus: Pick<EventBus, 'subscribe'>;
    store: OutboxBackend;
    log: Log;
    digest?: string | undefined;
    /** Per-account status for the digest (uptime, closes by code). */
    accounts?: () => Array<{ id: string; state: string; connectedSince: string | null; closesByCode: Record<string, number> }>;
  }) {
    this.#accounts = opts.accounts ?? (() => []);
    this.#engine = opts.engine;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#unsubscribe = opts.bus.subscribe({ types: ['account.*', 'message.failed', 'message.expired', 'message.retry_requested'] }, (e) => this.#onEvent(e));
    this.#timer = setInterval(() => void this.check(), CHECK_INTERVAL_MS);
    this.#timer.unref();
    if (opts.digest) this.#tasks.push(schedule(opts.digest, () => this.#logged('digest', this.sendDigest()), { name: 'wa-supervisor digest' }));
    this.#tasks.push(schedule('17 * * * *', () => this.#logged('housekeeping', this.housekeeping()), { name: 'wa-supervisor housekeeping' }));
  }

  #logged(what: string, p: Promise<unknown>): void {
    p.catch((err: unknown) => this.#log.error({ err }, `alert ${what} failed`));
  }

  /** The account state the monitor last saw (the engine uses it to keep moot alerts quiet). */
  stateOf(account: string): string | undefined {
    return this.#states.get(account)?.state;
  }

  /** Looks at the outbox for stuck and unsettled rows; runs every 15 s. */
  async check(now = Date.now()): Promise<void> {
    try {
      // The kept counts name the accounts with waiting rows; only those need a look at their rows
      // (two indexed aggregate queries each). With a thousand idle accounts that is none.
      const waiting = await this.#store.countsByAccount(['queued', 'unknown']);
      for (const [account, { state }] of this.#states) {
        const counts = waiting.get(account);
        const queued = counts?.queued ? await this.#store.stateAge(account, 'queued') : NO_ROWS;
        const ageMs = queued.oldestCreatedAt === null ? 0 : now - queued.oldestCreatedAt;
        this.#engine.set('queue_stuck', account, state === 'open' && queued.count > 0 && ageMs > QUEUE_STUCK_MS, { ageMs, count: queued.count });
        const unknown = counts?.unknown ? await this.#store.stateAge(account, 'unknown') : NO_ROWS;
        const unsettled = unknown.oldestUpdatedAt !== null && now - unknown.oldestUpdatedAt > UNKNOWN_UNSETTLED_MS;
        this.#engine.set('unknown_unsettled', account, unsettled, { count: unknown.count });
        const stale = inWindow(this.#stale, account, now);
        this.#engine.set('stale_repeating', account, stale >= STALE_COUNT, { count: stale });
        const retries = inWindow(this.#retries, account, now);
        this.#engine.set('retries_repeating', account, retries >= RETRY_COUNT, { count: retries });
      }
    } catch (err) {
      this.#log.error({ err }, 'alert check failed');
    }
  }

  /** Sends the digest now (the cron schedule calls this). */
  async sendDigest(): Promise<void> {
    const counts = await this.#store.countsByState();
    const raised = this.#engine.raisedCount - this.#raisedAtLastDigest;
    const now = Date.now();
    const detail = this.#accounts().map((a) => ({
      id: a.id,
      state: a.state,
      upForMs: a.connectedSince ? now - Date.parse(a.connectedSince) : 0,
      closesByCode: a.closesByCode,
    }));
    const known = detail.length ? detail : [...this.#states.entries()].map(([id, s]) => ({ id, state: s.state, upForMs: 0, closesByCode: {} }));
    const accounts = known.map((a) => `${a.id} ${a.state}`).join(', ') || 'no accounts';
    this.#engine.digest(
      `since ${new Date(this.#digestSince).toISOString()}: accounts ${accounts}; messages ${JSON.stringify(counts)}; ${raised} alert(s) raised`,
      { accounts: known, messagesByState: counts, alertsRaised: raised },
    );
    this.#digestSince = Date.now();
    this.#raisedAtLastDigest = this.#engine.raisedCount;
  }

  /** Prunes finished outbox rows older than the retention (the hourly schedule calls this). */
  async housekeeping(now = Date.now()): Promise<number> {
    const deleted = await this.#store.prune(now - RETAIN_FINISHED_MS);
    if (deleted) this.#log.info({ deleted }, 'housekeeping pruned finished messages');
    return deleted;
  }

  stop(): void {
    this.#unsubscribe();
    if (this.#timer) clearInterval(this.#timer);
    for (const t of this.#tasks) void t.stop();
  }

  #onEvent(e: BusEvent): void {
    const account = e.account;
    if (!account) return;
    switch (e.type) {
      case 'account.state': {
        const state = String(e.state);
        const prev = this.#states.get(account);
        this.#states.set(account, { state, lastClose: prev?.lastClose ?? null });
        const close = e.close as { code?: number | null; name?: string } | undefined;
        // needs_pairing alerts only when a close put it there (a new, never-paired account is not an incident).
        if (state === 'needs_pairing' && close) this.#engine.set('needs_pairing', account, true, { reason: `${close.code ?? ''} ${close.name ?? ''}`.trim() });
        if (state === 'conflict') this.#engine.set('conflict', account, true);
        if (state === 'forbidden') this.#engine.set('forbidden', account, true);
        if (state === 'open' || state === 'pairing') {
          for (const code of ['needs_pairing', 'conflict', 'forbidden']) this.#engine.set(code, account, false);
        }
        this.#engine.set('reconnecting_long', account, state === 'reconnecting', { lastClose: prev?.lastClose ?? null });
        if (TERMINAL.has(state)) {
          // The state's own alert says it all; the secondary ones are moot.
          for (const code of ['reconnecting_long', 'queue_stuck', 'unknown_unsettled', 'stale_repeating', 'retries_repeating']) this.#engine.set(code, account, false);
        }
        return;
      }
      case 'account.close': {
        const s = this.#states.get(account);
        if (s) s.lastClose = `${e.code ?? e.name} ${e.message ?? ''}`.trim();
        return;
      }
      case 'account.stale': {
        const count = inWindow(this.#stale, account, Date.now(), true);
        if (count >= STALE_COUNT) this.#engine.set('stale_repeating', account, true, { count });
        return;
      }
      case 'message.retry_requested': {
        const count = inWindow(this.#retries, account, Date.now(), true);
        if (count >= RETRY_COUNT) this.#engine.set('retries_repeating', account, true, { count });
        return;
      }
      case 'account.degraded':
        this.#engine.set('degraded', account, true, { closes: e.closes, windowMs: e.windowMs, regularIntervalMs: e.regularIntervalMs });
        return;
      case 'account.recovered':
        this.#engine.set('degraded', account, false);
        return;
      case 'account.removed':
        for (const code of ['needs_pairing', 'conflict', 'forbidden', 'degraded', 'reconnecting_long', 'queue_stuck', 'unknown_unsettled', 'stale_repeating']) {
          this.#engine.set(code, account, false);
        }
        this.#states.delete(account);
        return;
      case 'message.failed':
      case 'message.expired':
        // An operator alert that could not be sent must not raise another alert about itself.
        if (e.kind === 'alert') return;
        this.#engine.once('messages_failed', account, { id: e.id, state: e.state, reason: e.reason });
        return;
      default:
        return;
    }
  }
}

/** Times of an account's occurrences within the last STALE_WINDOW_MS (older ones dropped), after noting one now if `add`. */
function inWindow(times: Map<string, number[]>, account: string, now: number, add = false): number {
  const kept = times.get(account);
  if (!kept && !add) return 0;
  const list = (kept ?? []).filter((t) => now - t < STALE_WINDOW_MS);
  if (add) list.push(now);
  times.set(account, list);
  return list.length;
}
