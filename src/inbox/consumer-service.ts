// Consumers at run time: the config's consumers kept in step with the database, a delivery loop
// per webhook consumer, at most one open stream per stream consumer, and lag for status.
import type { Log } from '../log.js';
import { CONSUMED_STATUSES, type ConsumerRow, type ConsumerSpec, type ConsumerStore } from './consumers.js';
import { type FollowSink, followInbox } from './follow.js';
import type { Inbox } from './inbox.js';
import { type Poster, type StuckContext, WebhookDelivery, type WebhookSettings } from './webhook.js';

/** A consumer as `GET /v1/consumers` and `consumers list --json` show it (never the secret). */
export interface ConsumerView {
  name: string;
  type: ConsumerRow['type'];
  origin: ConsumerRow['origin'];
  accounts: string[] | null;
  url?: string;
  /** The committed cursor: everything at or below it is acknowledged. */
  cursor: string;
  lag: { unacknowledged: number; oldestReceivedAt: string | null; oldestAgeMs: number | null };
  /** Stream consumers: whether a reader is connected now. */
  connected?: boolean;
  ackedAt: string | null;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  deadLetters: number;
}

/** Why a stream could not be opened. */
export class ConsumerError extends Error {
  constructor(
    readonly code: 'not_found' | 'conflict' | 'bad_request',
    message: string,
  ) {
    super(message);
  }
}

function accountsKey(accounts: readonly string[] | undefined): string | null {
  return accounts ? [...accounts].sort().join(',') : null;
}

/** Runs the consumers. */
export class ConsumerService {
  readonly store: ConsumerStore;
  readonly #inbox: Inbox;
  readonly #log: Log;
  readonly #webhooks = new Map<string, WebhookDelivery>();
  /** Open stream per consumer: its filter when opened, how to end it, and the highest cursor written. */
  readonly #streams = new Map<string, { accounts: string | null; end: () => void }>();
  /** Per consumer, the highest cursor a reader of it was handed in this daemon run (acks stop there). */
  readonly #given = new Map<string, number>();
  #settings: WebhookSettings;
  readonly #post: Poster | undefined;
  readonly #onStuck: (context: StuckContext) => void;
  readonly #now: () => number;

  constructor(opts: {
    store: ConsumerStore;
    inbox: Inbox;
    log: Log;
    settings: WebhookSettings;
    onStuck: (context: StuckContext) => void;
    post?: Poster;
    now?: () => number;
  }) {
    this.store = opts.store;
    this.#inbox = opts.inbox;
    this.#log = opts.log;
    this.#settings = opts.settings;
    this.#onStuck = opts.onStuck;
    this.#post = opts.post;
    this.#now = opts.now ?? Date.now;
  }

  /** Applies the config's consumers and settings, and (re)starts the webhook loops to match. */
  async applyConfig(specs: readonly ConsumerSpec[], settings: WebhookSettings): Promise<{ added: string[]; removed: string[] }> {
    this.#settings = settings;
    const changes = this.store.syncConfig(specs);
    await this.#reconcile();
    return changes;
  }

  /** Adds a consumer from the API. */
  async add(spec: ConsumerSpec): Promise<ConsumerView> {
    if (!this.store.add(spec)) throw new ConsumerError('conflict', `consumer "${spec.name}" exists already`);
    await this.#reconcile();
    return this.view(this.store.get(spec.name)!);
  }

  /** Removes an API consumer (a config consumer is removed from the config). */
  async remove(name: string): Promise<void> {
    const c = this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    if (c.origin === 'config') throw new ConsumerError('conflict', `consumer "${name}" is defined in the config file; remove it there and reload`);
    this.store.remove(name);
    await this.#reconcile();
  }

  /** Every consumer with its lag. */
  list(): ConsumerView[] {
    return this.store.list().map((c) => this.view(c));
  }

  /** One consumer with its lag. */
  get(name: string): ConsumerView {
    const c = this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    return this.view(c);
  }

  /**
   * Streams a stream consumer's messages from its committed cursor into the sink `open` makes
   * (called once the consumer is known to be free) until it closes.
   * One reader per consumer at a time: a second is refused, so "after an ack, never again" holds.
   */
  openStream(name: string, open: () => FollowSink): void {
    const c = this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    if (c.type !== 'stream') throw new ConsumerError('conflict', `consumer "${name}" is a ${c.type} consumer; the daemon delivers to it`);
    if (this.#streams.has(name)) throw new ConsumerError('conflict', `consumer "${name}" already has a reader connected`);
    const sink = open();
    const stream = { accounts: accountsKey(c.accounts), end: () => sink.close?.() };
    this.#streams.set(name, stream);
    sink.onClose(() => {
      if (this.#streams.get(name) === stream) this.#streams.delete(name);
    });
    const counting: FollowSink = {
      write: (row) => {
        if (this.#streams.get(name) === stream) this.#given.set(name, Math.max(this.#given.get(name) ?? 0, row.cursor));
        return sink.write(row);
      },
      drained: () => sink.drained(),
      get closed() {
        return sink.closed;
      },
      onClose: (fn) => sink.onClose(fn),
    };
    void followInbox(this.#inbox, { after: c.cursor, ...(c.accounts ? { accounts: c.accounts } : {}), statuses: CONSUMED_STATUSES }, counting);
  }

  /** Commits a stream consumer's cursor; answers the committed one (it never moves back). */
  ack(name: string, cursor: number): number {
    const c = this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    if (c.type !== 'stream') throw new ConsumerError('conflict', `consumer "${name}" is a ${c.type} consumer; the daemon acknowledges its deliveries`);
    // Only what this consumer's reader was handed can be acknowledged: acking "the newest
    // cursor" must not skip rows it never saw (retention would then delete them).
    const given = Math.max(c.cursor, this.#given.get(name) ?? 0);
    if (cursor > given) throw new ConsumerError('bad_request', `cursor: ${cursor} was never given to consumer "${name}" (the last it was given is ${given})`);
    return this.store.ack(name, cursor)!;
  }

  /** Stops every webhook loop (daemon stop). */
  async stop(): Promise<void> {
    await Promise.all([...this.#webhooks.values()].map((w) => w.stop()));
    this.#webhooks.clear();
  }

  view(c: ConsumerRow): ConsumerView {
    const lag = this.store.lag(c);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      name: c.name,
      type: c.type,
      origin: c.origin,
      accounts: c.accounts ?? null,
      ...(c.url ? { url: c.url } : {}),
      cursor: String(c.cursor),
      lag: {
        unacknowledged: lag.unacknowledged,
        oldestReceivedAt: iso(lag.oldestReceivedAt),
        oldestAgeMs: lag.oldestReceivedAt === null ? null : Math.max(0, this.#now() - lag.oldestReceivedAt),
      },
      ...(c.type === 'stream' ? { connected: this.#streams.has(c.name) } : {}),
      ackedAt: iso(c.ackedAt),
      attempts: c.attempts,
      nextAttemptAt: iso(c.nextAttemptAt),
      lastError: c.lastError,
      lastErrorAt: iso(c.lastErrorAt),
      deadLetters: this.store.deadLetterCount(c.name),
    };
  }

  /** One delivery loop per webhook consumer in the database; a changed consumer restarts its loop. */
  async #reconcile(): Promise<void> {
    // An open stream whose consumer is gone or now reads other accounts (or is no stream) ends;
    // its reader reconnects under the consumer as it now is.
    for (const [name, stream] of [...this.#streams]) {
      const c = this.store.get(name);
      if (!c || c.type !== 'stream' || accountsKey(c.accounts) !== stream.accounts) {
        this.#streams.delete(name);
        stream.end();
      }
    }
    for (const name of [...this.#given.keys()]) if (!this.store.get(name)) this.#given.delete(name);
    const wanted = new Map(this.store.list().filter((c) => c.type === 'webhook').map((c) => [c.name, c]));
    const stopping: Promise<void>[] = [];
    for (const [name, loop] of this.#webhooks) {
      if (!wanted.has(name)) {
        stopping.push(loop.stop());
        this.#webhooks.delete(name);
      }
    }
    await Promise.all(stopping);
    for (const name of wanted.keys()) {
      if (this.#webhooks.has(name)) continue;
      const loop = new WebhookDelivery({
        name,
        consumers: this.store,
        inbox: this.#inbox,
        settings: () => this.#settings,
        log: this.#log,
        onStuck: this.#onStuck,
        ...(this.#post ? { post: this.#post } : {}),
      });
      this.#webhooks.set(name, loop);
      loop.start();
    }
  }
}
