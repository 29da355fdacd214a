// The in-process event bus. Every part of the daemon publishes here; the control socket's
// /v1/events stream and internal listeners subscribe with a filter. Filtering happens at the
// source, so a subscriber never sees another account's or another request's events.

/** An event as published and as written to subscribers (one NDJSON line each). */
export interface BusEvent {
  /** Dotted event type, e.g. `daemon.started`, `account.state`. */
  type: string;
  /** ISO-8601 time of publication. */
  at: string;
  /** Monotonic sequence number within this daemon run, so a reader can spot gaps. */
  seq: number;
  /** The account the event is about, when it is about one. */
  account?: string;
  /** The control request that caused the event, when one did. */
  requestId?: string;
  /** For outbox events, the operator request (retry, approve, cancel) that moved the row, when one did. */
  causedBy?: string;
  [key: string]: unknown;
}

/** What a publisher supplies; `at` and `seq` are stamped by the bus. */
export interface EventInput {
  type: string;
  account?: string;
  requestId?: string;
  [key: string]: unknown;
}

/**
 * A subscriber's filter. Each given field must match; an absent field matches everything.
 * `types` entries match exactly, or by prefix when they end in `.*` (`account.*`).
 * With `accounts` set, events about no account are not delivered.
 */
export interface EventFilter {
  accounts?: readonly string[];
  types?: readonly string[];
  requestId?: string;
}

/** A listener receives only events that pass its filter. */
export type EventListener = (event: BusEvent) => void;

/** Publish/subscribe with per-subscriber filters. Listener errors never reach the publisher. */
export class EventBus {
  #seq = 0;
  readonly #subs = new Set<{ filter: EventFilter; listener: EventListener }>();
  readonly #onListenerError: (err: unknown, event: BusEvent) => void;
  readonly #now: () => Date;

  constructor(opts: { onListenerError?: (err: unknown, event: BusEvent) => void; now?: () => Date } = {}) {
    this.#onListenerError = opts.onListenerError ?? (() => {});
    this.#now = opts.now ?? (() => new Date());
  }

  /** Stamps the event with time and sequence and delivers it to every matching subscriber. */
  publish(input: EventInput): BusEvent {
    const event: BusEvent = { ...input, at: this.#now().toISOString(), seq: ++this.#seq };
    for (const sub of this.#subs) {
      if (!matchesFilter(sub.filter, event)) continue;
      try {
        sub.listener(event);
      } catch (err) {
        this.#onListenerError(err, event);
      }
    }
    return event;
  }

  /** Registers a listener; the returned function unsubscribes it. */
  subscribe(filter: EventFilter, listener: EventListener): () => void {
    const sub = { filter, listener };
    this.#subs.add(sub);
    return () => {
      this.#subs.delete(sub);
    };
  }

  /** Number of live subscriptions (for status and tests). */
  get subscriberCount(): number {
    return this.#subs.size;
  }
}

/** True when the event passes the filter. */
export function matchesFilter(filter: EventFilter, event: BusEvent): boolean {
  // An operator's request (retry, approve, cancel) is named as `causedBy` on the events it caused.
  if (filter.requestId !== undefined && event.requestId !== filter.requestId && event.causedBy !== filter.requestId) return false;
  if (filter.accounts && filter.accounts.length > 0) {
    if (event.account === undefined || !filter.accounts.includes(event.account)) return false;
  }
  if (filter.types && filter.types.length > 0) {
    const ok = filter.types.some((t) => (t.endsWith('.*') ? event.type.startsWith(t.slice(0, -1)) : event.type === t));
    if (!ok) return false;
  }
  return true;
}
