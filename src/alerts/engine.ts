// The alert engine: conditions go in (`set`, `once`), notifications come out to the sinks. One
// notification per condition while it holds, nothing before its time-to-visible, a recovered
// notice when it clears, and a cap per sink per hour. Alerts have their own sinks; there is no
// path from here to a chat other than a configured operator sink.
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../events/bus.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { Log } from '../log.js';
import { alertKind, type AlertContext, type Severity } from './kinds.js';

/** An alert as sinks and the API see it. */
export interface Alert {
  id: string;
  code: string;
  severity: Severity;
  account?: string;
  text: string;
  raisedAt: string;
  /** Set on the recovered notice. */
  recoveredAt?: string;
  details: AlertContext;
}

/** What a sink receives. */
export interface AlertNotification {
  type: 'alert' | 'alert.recovered' | 'digest';
  alert: Alert;
}

/** A place notifications go. `deliver` must not throw or block; it owns its retries. */
export interface AlertSink {
  readonly name: string;
  deliver(n: AlertNotification): void;
  close?(): void;
}

/**
 * In a cluster: the raised conditions and the hourly cap, shared with the other daemons
 * (pg-alert-state.ts). When the store does not answer, the engine notifies as one daemon would:
 * an alert sent twice is better than one lost (the store being cut off is itself an alert).
 */
export interface SharedAlertState {
  keyOf(code: string, account: string | undefined): string;
  /** Records a raised condition; true when it is new to the cluster (this daemon notifies). */
  claim(key: string, alert: Alert): Promise<boolean>;
  /** Keeps the rows of conditions this daemon still sees from going stale. */
  refresh(keys: readonly string[]): Promise<void>;
  /** Clears it; true when it was raised (its recovered notice is due). */
  release(key: string): Promise<boolean>;
  /** Counts a notification to a sink against the cluster's hourly cap; false when over it. */
  takeSend(sink: string, capPerHour: number): Promise<boolean>;
  /** The cluster's raised alerts. */
  active(): Promise<Alert[]>;
}

/** How often a daemon of a cluster refreshes the conditions it still sees; a row is stale after three periods. */
export const ALERT_REFRESH_MS = 20_000;

/** Notifications per sink per hour by default. */
export const DEFAULT_CAP_PER_HOUR = 30;
const RECENT_LIMIT = 200;

interface Condition {
  key: string;
  code: string;
  context: AlertContext;
  since: number;
  timer: NodeJS.Timeout | null;
  alert: Alert | null;
  /** This daemon sent the alert (in a cluster another daemon may have, and this one adopted it). */
  notified: boolean;
  /** In a cluster: the condition is recorded in the shared store (false when raised with the store cut off). */
  inStore: boolean;
}

/** The engine. `accountState` lets suppressed kinds stay quiet while an account is in a terminal state. */
export class AlertEngine {
  readonly #conditions = new Map<string, Condition>();
  readonly #recent: AlertNotification[] = [];
  readonly #sent = new Map<string, number[]>();
  readonly #bus: Pick<EventBus, 'publish'>;
  readonly #log: Log;
  readonly #accountState: (account: string) => string | undefined;
  #sinks: AlertSink[];
  #capPerHour: number;
  #raisedCount = 0;
  readonly #shared: SharedAlertState | undefined;
  /** A condition's claim and release, and one sink's notifications, in the order they were made. */
  readonly #inOrder = new KeyedQueue();
  #refresh: NodeJS.Timeout | null = null;

  constructor(opts: {
    bus: Pick<EventBus, 'publish'>;
    log: Log;
    sinks: AlertSink[];
    capPerHour?: number;
    accountState: (account: string) => string | undefined;
    shared?: SharedAlertState;
    /** In a cluster: how often the conditions still seen are refreshed (ALERT_REFRESH_MS). */
    refreshMs?: number;
    /** In a cluster: whether this daemon holds the account (only its own accounts' conditions are refreshed). */
    owns?: (account: string) => boolean;
  }) {
    this.#shared = opts.shared;
    if (this.#shared) {
      const shared = this.#shared;
      const owns = opts.owns ?? (() => true);
      this.#refresh = setInterval(() => {
        // Only what this daemon still sees: an account it handed over keeps its local conditions
        // (nothing clears them here), and refreshing them would silence the new owner's next incident.
        const keys = [...this.#conditions.values()]
          .filter((c) => c.alert && c.inStore && (c.context.account === undefined || owns(String(c.context.account))))
          .map((c) => shared.keyOf(c.code, c.context.account as string | undefined));
        void this.#orLocal(() => shared.refresh(keys), undefined, 'refreshing raised alerts');
      }, opts.refreshMs ?? ALERT_REFRESH_MS);
      this.#refresh.unref();
    }
    this.#bus = opts.bus;
    this.#log = opts.log;
    this.#sinks = opts.sinks;
    this.#capPerHour = opts.capPerHour ?? DEFAULT_CAP_PER_HOUR;
    this.#accountState = opts.accountState;
  }

  /** Replaces the sinks (config reload). */
  setSinks(sinks: AlertSink[], capPerHour = DEFAULT_CAP_PER_HOUR): void {
    for (const s of this.#sinks) s.close?.();
    this.#sinks = sinks;
    this.#capPerHour = capPerHour;
  }

  /** Alerts raised since the daemon started. */
  get raisedCount(): number {
    return this.#raisedCount;
  }

  /**
   * Reports whether a condition holds. Raising waits for the kind's time-to-visible; clearing a
   * raised alert sends its recovered notice; clearing a pending one sends nothing.
   */
  set(code: string, account: string | undefined, holds: boolean, context: AlertContext = {}): void {
    const key = `${code}:${account ?? ''}`;
    const existing = this.#conditions.get(key);
    if (holds) {
      if (existing) {
        Object.assign(existing.context, context);
        return;
      }
      const kind = alertKind(code);
      const c: Condition = { key, code, context: { ...context, ...(account ? { account } : {}) }, since: Date.now(), timer: null, alert: null, notified: false, inStore: false };
      this.#conditions.set(key, c);
      if (kind.timeToVisibleMs <= 0) this.#fire(c);
      else {
        c.timer = setTimeout(() => this.#fire(c), kind.timeToVisibleMs);
        c.timer.unref();
      }
      return;
    }
    if (!existing) return;
    this.#conditions.delete(key);
    if (existing.timer) clearTimeout(existing.timer);
    if (existing.alert) {
      const kind = alertKind(code);
      const recovered: Alert = { ...existing.alert, text: kind.recovered(existing.context), recoveredAt: new Date().toISOString() };
      const shared = this.#shared;
      if (!shared) {
        this.#notify({ type: 'alert.recovered', alert: recovered });
        return;
      }
      // Recovered once for the cluster, by the daemon that clears it first; a daemon that sent
      // the alert alone (the store cut off) sends its recovered notice alone too.
      const sharedKey = shared.keyOf(code, account);
      void this.#inOrder.run(`condition ${sharedKey}`, async () => {
        const released = await this.#orLocal<boolean | null>(() => shared.release(sharedKey), null, 'clearing an alert');
        // Store answered: due when the row was there, or when this daemon sent the alert alone (no
        // row was made). Store cut off: as one daemon alone would, for an alert it sent or adopted.
        const due = released === null ? existing.notified || existing.inStore : released || (existing.notified && !existing.inStore);
        if (due) this.#notify({ type: 'alert.recovered', alert: recovered });
      });
    }
  }

  /** Reports a one-shot event (a crash, a failed message). */
  once(code: string, account: string | undefined, context: AlertContext = {}): void {
    const kind = alertKind(code);
    const ctx = { ...context, ...(account ? { account } : {}) };
    if (account && kind.suppressedIn.includes(this.#accountState(account) ?? '')) return;
    this.#raisedCount++;
    this.#notify({ type: 'alert', alert: this.#alert(code, ctx) });
  }

  /** Sends a digest notification to every sink. */
  digest(text: string, details: AlertContext): void {
    this.#notify({
      type: 'digest',
      alert: { id: randomUUID(), code: 'digest', severity: 'info', text, raisedAt: new Date().toISOString(), details },
    });
  }

  /** Alerts raised and not recovered. */
  active(): Alert[] {
    return [...this.#conditions.values()].filter((c) => c.alert).map((c) => c.alert!);
  }

  /** In a cluster, every daemon's raised alerts (with this daemon's own when the store does not answer). */
  async activeInCluster(): Promise<Alert[]> {
    const local = this.active();
    if (!this.#shared) return local;
    const shared = await this.#orLocal(() => this.#shared!.active(), [], 'listing alerts');
    const keyOf = (a: Alert) => this.#shared!.keyOf(a.code, a.account);
    const known = new Set(shared.map(keyOf));
    return [...shared, ...local.filter((a) => !known.has(keyOf(a)))];
  }

  /** Recent notifications, newest first. */
  recent(): AlertNotification[] {
    return [...this.#recent].reverse();
  }

  /** Resolves once every claim, release and capped delivery asked of the shared state has run (and what they started). */
  async settled(): Promise<void> {
    await this.#inOrder.drained();
  }

  /** Drops pending timers (shutdown). */
  stop(): void {
    if (this.#refresh) clearInterval(this.#refresh);
    for (const c of this.#conditions.values()) if (c.timer) clearTimeout(c.timer);
    for (const s of this.#sinks) s.close?.();
  }

  #fire(c: Condition): void {
    c.timer = null;
    if (this.#conditions.get(c.key) !== c || c.alert) return;
    const kind = alertKind(c.code);
    const account = c.context.account as string | undefined;
    if (account && kind.suppressedIn.includes(this.#accountState(account) ?? '')) {
      // Moot while the account's own state alert stands; checked again if the condition is re-set.
      this.#conditions.delete(c.key);
      return;
    }
    const alert = this.#alert(c.code, c.context);
    c.alert = alert;
    this.#raisedCount++;
    const shared = this.#shared;
    if (!shared) {
      c.notified = true;
      this.#notify({ type: 'alert', alert });
      return;
    }
    // Raised once for the cluster: a condition another daemon raised and still sees is adopted.
    const sharedKey = shared.keyOf(c.code, account);
    void this.#inOrder.run(`condition ${sharedKey}`, async () => {
      const claimed = await this.#orLocal<boolean | null>(() => shared.claim(sharedKey, alert), null, 'raising an alert');
      c.inStore = claimed !== null;
      if (claimed === false) return; // adopted
      c.notified = true;
      this.#notify({ type: 'alert', alert });
    });
  }

  /** The shared store's answer, or `fallback` (what one daemon alone would do) when it does not answer. */
  async #orLocal<T>(ask: () => Promise<T>, fallback: T, doing: string): Promise<T> {
    try {
      return await ask();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, `alerts: the shared store did not answer while ${doing}; this daemon decides alone`);
      return fallback;
    }
  }

  #alert(code: string, context: AlertContext): Alert {
    const kind = alertKind(code);
    return {
      id: randomUUID(),
      code,
      severity: kind.severity,
      ...(context.account ? { account: String(context.account) } : {}),
      text: kind.text(context),
      raisedAt: new Date().toISOString(),
      details: context,
    };
  }

  #notify(n: AlertNotification): void {
    this.#recent.push(n);
    if (this.#recent.length > RECENT_LIMIT) this.#recent.shift();
    const level = n.type === 'alert' && n.alert.severity === 'critical' ? 'error' : n.type === 'alert' ? 'warn' : 'info';
    this.#log[level]({ alert: n.alert, notification: n.type }, `${n.type}: ${n.alert.text}`);
    this.#bus.publish({ type: n.type, ...(n.alert.account ? { account: n.alert.account } : {}), alert: n.alert });
    for (const sink of this.#sinks) {
      const shared = this.#shared;
      if (!shared) {
        if (this.#underLocalCap(sink.name, n)) this.#deliver(sink, n);
        continue;
      }
      // The cap counts every daemon's notifications to the sink; one sink's go out in order.
      const cap = this.#capPerHour;
      void this.#inOrder.run(`sink ${sink.name}`, async () => {
        const under = await this.#orLocal(() => shared.takeSend(sink.name, cap), null, 'counting a notification');
        if (under ?? this.#underLocalCap(sink.name, n)) this.#deliver(sink, n);
        else if (under === false) this.#log.warn({ sink: sink.name, capPerHour: cap, alert: n.alert.code }, 'alert sink is over its hourly cap (cluster-wide); notification dropped for this sink');
      });
    }
  }

  /** Counts a notification against this daemon's own hourly cap of the sink; false when over it. */
  #underLocalCap(sink: string, n: AlertNotification): boolean {
    const now = Date.now();
    const times = (this.#sent.get(sink) ?? []).filter((t) => now - t < 3_600_000);
    this.#sent.set(sink, times);
    if (times.length >= this.#capPerHour) {
      this.#log.warn({ sink, capPerHour: this.#capPerHour, alert: n.alert.code }, 'alert sink is over its hourly cap; notification dropped for this sink');
      return false;
    }
    times.push(now);
    return true;
  }

  #deliver(sink: AlertSink, n: AlertNotification): void {
    try {
      sink.deliver(n);
    } catch (err) {
      this.#log.error({ err, sink: sink.name }, 'alert sink failed');
    }
  }
}
