// The alert engine: conditions go in (`set`, `once`), notifications come out to the sinks. One
// notification per condition while it holds, nothing before its time-to-visible, a recovered
// notice when it clears, and a cap per sink per hour. Alerts have their own sinks; there is no
// path from here to a chat other than a configured operator sink.
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../events/bus.js';
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

  constructor(opts: {
    bus: Pick<EventBus, 'publish'>;
    log: Log;
    sinks: AlertSink[];
    capPerHour?: number;
    accountState: (account: string) => string | undefined;
  }) {
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
      const c: Condition = { key, code, context: { ...context, ...(account ? { account } : {}) }, since: Date.now(), timer: null, alert: null };
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
      this.#notify({ type: 'alert.recovered', alert: recovered });
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

  /** Recent notifications, newest first. */
  recent(): AlertNotification[] {
    return [...this.#recent].reverse();
  }

  /** Drops pending timers (shutdown). */
  stop(): void {
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
    c.alert = this.#alert(c.code, c.context);
    this.#raisedCount++;
    this.#notify({ type: 'alert', alert: c.alert });
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
    const now = Date.now();
    for (const sink of this.#sinks) {
      const times = (this.#sent.get(sink.name) ?? []).filter((t) => now - t < 3_600_000);
      if (times.length >= this.#capPerHour) {
        this.#log.warn({ sink: sink.name, capPerHour: this.#capPerHour, alert: n.alert.code }, 'alert sink is over its hourly cap; notification dropped for this sink');
        this.#sent.set(sink.name, times);
        continue;
      }
      times.push(now);
      this.#sent.set(sink.name, times);
      try {
        sink.deliver(n);
      } catch (err) {
        this.#log.error({ err, sink: sink.name }, 'alert sink failed');
      }
    }
  }
}
