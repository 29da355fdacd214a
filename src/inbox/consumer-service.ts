// Consumers at run time: the config's consumers kept in step with the database, a delivery loop
// per webhook consumer, at most one open stream per stream consumer, and lag for status.
//
// In a cluster (docs/cluster.md) every daemon sees every consumer, and a consumer's lock (locks)
// decides which daemon serves it: the one that delivers a webhook consumer, the one a stream
// consumer's reader is connected to. Each daemon tries the webhook locks it lacks on a timer, so
// the consumers of a daemon that died move to the others.
import { KeyedQueue } from '../keyed-queue.js';
import type { Log } from '../log.js';
import { CONSUMED_STATUSES, type ConsumerBackend, type ConsumerIdentity, type ConsumerRow, type ConsumerSpec } from './consumers.js';
import { type FollowSink, followInbox } from './follow.js';
import type { Inbox } from './inbox.js';
import type { InboxRow } from './store.js';
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

/**
 * Whether the caller may read this consumer, judged on the very row a read, stream or ack then
 * uses (a check on an earlier read of it could pass for accounts a reload has since changed);
 * throws to refuse.
 */
export type ReadCheck = (consumer: ConsumerRow) => void;

/** The check of a caller who may read every consumer (an operator, the daemon itself). */
export const ANY_READER: ReadCheck = () => undefined;

/** Which daemon of a cluster serves a consumer: at most one holds a consumer's lock. */
export interface ConsumerLocks {
  /** Takes the consumer's lock for this daemon; false when another daemon holds it. */
  tryTake(name: string): Promise<boolean>;
  release(name: string): Promise<void>;
  /** `fn` runs when every lock this daemon held is gone (the connection holding them was lost). */
  onLost(fn: () => void): void;
  close(): Promise<void>;
}

/** How often a daemon of a cluster tries the webhook consumers' locks it lacks. */
export const CONSUMER_LOCK_RETRY_MS = 5000;

function accountsKey(accounts: readonly string[] | undefined): string | null {
  return accounts ? [...accounts].sort().join(',') : null;
}

/** Whether a consumer read again is still the one read before (a reload changes type and accounts in place, a remove and add its creation). */
function sameConsumer(was: ConsumerIdentity, now: ConsumerIdentity | null): boolean {
  return !!now && now.type === was.type && now.createdAt === was.createdAt && accountsKey(now.accounts) === accountsKey(was.accounts);
}

/** Runs the consumers. */
export class ConsumerService {
  readonly store: ConsumerBackend;
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
  readonly #locks: ConsumerLocks | undefined;
  /** Changes to the consumers (config, add, remove) apply in the order they were asked for. */
  readonly #changes = new KeyedQueue();
  #retry: NodeJS.Timeout | null = null;
  /** The timer's reconcile in progress, if any (the timer skips a turn rather than pile up). */
  #retrying: Promise<void> | null = null;
  #stopped = false;
  /** The consumers this daemon's config lists. */
  #configured = new Set<string>();

  constructor(opts: {
    store: ConsumerBackend;
    inbox: Inbox;
    log: Log;
    settings: WebhookSettings;
    onStuck: (context: StuckContext) => void;
    post?: Poster;
    now?: () => number;
    /** In a cluster: the consumers' locks. */
    locks?: ConsumerLocks;
  }) {
    this.store = opts.store;
    this.#inbox = opts.inbox;
    this.#log = opts.log;
    this.#settings = opts.settings;
    this.#onStuck = opts.onStuck;
    this.#post = opts.post;
    this.#now = opts.now ?? Date.now;
    this.#locks = opts.locks;
    if (this.#locks) {
      this.#locks.onLost(() => {
        // Another daemon may serve them now: this one stops at once, and tries again on the timer.
        this.#log.warn('consumer locks lost (the store connection went away); webhook deliveries and streams of this daemon stop until they are taken again');
        for (const [name, stream] of [...this.#streams]) {
          this.#streams.delete(name);
          stream.end();
        }
        for (const [name, loop] of [...this.#webhooks]) {
          this.#webhooks.delete(name);
          void loop.stop();
        }
      });
      this.#retry = setInterval(() => {
        if (this.#retrying) return;
        this.#retrying = this.#reconcile()
          .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'consumers: could not check the locks (the store did not answer); trying again'))
          .finally(() => (this.#retrying = null));
      }, CONSUMER_LOCK_RETRY_MS);
      this.#retry.unref();
    }
  }

  /** Applies the config's consumers and settings, and (re)starts the webhook loops to match. */
  async applyConfig(specs: readonly ConsumerSpec[], settings: WebhookSettings): Promise<{ added: string[]; removed: string[] }> {
    this.#settings = settings;
    this.#configured = new Set(specs.map((c) => c.name));
    const changes = await this.#change(() => this.store.syncConfig(specs));
    await this.#reconcile();
    return changes;
  }

  /** Adds a consumer from the API. */
  async add(spec: ConsumerSpec): Promise<ConsumerView> {
    if (!(await this.#change(() => this.store.add(spec)))) throw new ConsumerError('conflict', `consumer "${spec.name}" exists already`);
    await this.#reconcile();
    return this.view((await this.store.get(spec.name))!);
  }

  /** Removes an API consumer (a config consumer is removed from the config). */
  async remove(name: string): Promise<void> {
    await this.#change(async () => {
      const c = await this.store.get(name);
      if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
      // In a cluster a config consumer no daemon's config lists any more is removed here (a
      // config sync there keeps what another daemon's config may still list).
      if (c.origin === 'config' && (!this.#locks || this.#configured.has(name))) {
        throw new ConsumerError(
          'conflict',
          this.#locks
            ? `consumer "${name}" is defined in this daemon's config file; remove it from every daemon's config, reload them, then remove it`
            : `consumer "${name}" is defined in the config file; remove it there and reload`,
        );
      }
      await this.store.remove(name);
    });
    await this.#reconcile();
  }

  /** Every consumer with its lag. */
  async list(): Promise<ConsumerView[]> {
    return Promise.all((await this.store.list()).map((c) => this.view(c)));
  }

  /** One consumer with its lag. */
  async get(name: string): Promise<ConsumerView> {
    const c = await this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    return this.view(c);
  }

  /**
   * Streams a stream consumer's messages from its committed cursor into the sink `open` makes
   * (called once the consumer is known to be free) until it closes.
   * One reader per consumer at a time (in a cluster, on any daemon): a second is refused, so
   * "after an ack, never again" holds.
   */
  async openStream(name: string, open: () => FollowSink, allow: ReadCheck): Promise<void> {
    const c = await this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    allow(c);
    if (c.type !== 'stream') throw new ConsumerError('conflict', `consumer "${name}" is a ${c.type} consumer; the daemon delivers to it`);
    if (this.#streams.has(name)) throw new ConsumerError('conflict', `consumer "${name}" already has a reader connected`);
    if (this.#locks) {
      const placeholder = { accounts: accountsKey(c.accounts), end: () => undefined };
      this.#streams.set(name, placeholder); // no second reader here while the lock is asked for
      let taken = false;
      try {
        taken = await this.#locks.tryTake(name);
      } finally {
        if (this.#streams.get(name) === placeholder) this.#streams.delete(name);
      }
      if (!taken) throw new ConsumerError('conflict', `consumer "${name}" already has a reader connected (to another daemon of the cluster)`);
    }
    let sink: FollowSink;
    try {
      sink = open();
    } catch (err) {
      if (this.#locks) await this.#locks.release(name).catch(() => undefined);
      throw err;
    }
    const stream = { accounts: accountsKey(c.accounts), end: () => sink.close?.() };
    this.#streams.set(name, stream);
    sink.onClose(() => {
      if (this.#streams.get(name) === stream) this.#streams.delete(name);
      if (this.#locks) void this.#locks.release(name).catch(() => undefined);
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
      close: () => sink.close?.(),
    };
    void followInbox(this.#inbox, { after: c.cursor, ...(c.accounts ? { accounts: c.accounts } : {}), statuses: CONSUMED_STATUSES }, counting, (err) =>
      this.#log.warn({ err: (err as Error).message, consumer: name }, 'consumer stream: the store did not answer; the stream ends and its reader reconnects'),
    );
  }

  /**
   * A stream consumer's next rows, from its committed cursor, without a stream: a pull read for
   * readers that cannot hold a connection open (an agent's tool call). What it hands out can be
   * acknowledged like a stream's. Refused while a stream reader is connected (anywhere in a
   * cluster): two readers would break "after an ack, never again".
   */
  async next(name: string, limit: number, allow: ReadCheck): Promise<{ rows: InboxRow[]; committed: number }> {
    const c = await this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    allow(c);
    if (c.type !== 'stream') throw new ConsumerError('conflict', `consumer "${name}" is a ${c.type} consumer; the daemon delivers to it`);
    const busy = () => new ConsumerError('conflict', `consumer "${name}" has a stream reader connected; read it there, or close that stream first`);
    if (this.#streams.has(name)) throw busy();
    const placeholder = { accounts: accountsKey(c.accounts), end: () => undefined };
    this.#streams.set(name, placeholder); // no stream opens while this read runs
    try {
      if (this.#locks && !(await this.#locks.tryTake(name))) throw busy();
      try {
        const rows = await this.#inbox.store.list({ after: c.cursor, ...(c.accounts ? { accounts: c.accounts } : {}), statuses: CONSUMED_STATUSES, limit });
        // Replaced while it was read (removed and added again, its accounts changed: this
        // daemon's reconcile ended the read, or in a cluster another daemon changed the store):
        // the rows are the old consumer's and could not be acknowledged, so none is handed out.
        const now = await this.store.get(name);
        if (!sameConsumer(c, now) || this.#streams.get(name) !== placeholder) throw new ConsumerError('conflict', `consumer "${name}" changed while it was read; read it again`);
        const last = rows.at(-1)?.cursor;
        if (last !== undefined) this.#given.set(name, Math.max(this.#given.get(name) ?? 0, last));
        return { rows, committed: c.cursor };
      } finally {
        if (this.#locks) await this.#locks.release(name).catch(() => undefined);
      }
    } finally {
      if (this.#streams.get(name) === placeholder) this.#streams.delete(name);
    }
  }

  /** Commits a stream consumer's cursor; answers the committed one (it never moves back). */
  async ack(name: string, cursor: number, allow: ReadCheck): Promise<number> {
    const c = await this.store.get(name);
    if (!c) throw new ConsumerError('not_found', `no consumer "${name}"`);
    allow(c);
    if (c.type !== 'stream') throw new ConsumerError('conflict', `consumer "${name}" is a ${c.type} consumer; the daemon acknowledges its deliveries`);
    // Only what this consumer's reader was handed can be acknowledged: acking "the newest
    // cursor" must not skip rows it never saw (retention would then delete them).
    const given = Math.max(c.cursor, this.#given.get(name) ?? 0);
    if (cursor > given) throw new ConsumerError('bad_request', `cursor: ${cursor} was never given to consumer "${name}" (the last it was given is ${given})`);
    // Written only while the consumer is the one checked: replaced or given other accounts since,
    // the ack would move a cursor the caller was never judged for.
    const committed = await this.store.ack(name, cursor, c);
    if (committed === null) throw new ConsumerError('conflict', `consumer "${name}" changed while it was acknowledged; read it again`);
    return committed;
  }

  /** Stops every webhook loop (daemon stop). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearInterval(this.#retry);
    await this.#retrying;
    await Promise.all([...this.#webhooks.values()].map((w) => w.stop()));
    this.#webhooks.clear();
    await this.#locks?.close();
  }

  async view(c: ConsumerRow): Promise<ConsumerView> {
    const [lag, deadLetters] = await Promise.all([this.store.lag(c), this.store.deadLetterCount(c.name)]);
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
      deadLetters,
    };
  }

  #change<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.#changes.run('consumers', async () => fn());
  }

  /** One delivery loop per webhook consumer in the database (in a cluster, per lock held); a changed consumer restarts its loop. */
  async #reconcile(): Promise<void> {
    if (this.#stopped) return;
    const all = new Map((await this.store.list()).map((c) => [c.name, c]));
    // An open stream whose consumer is gone or now reads other accounts (or is no stream) ends;
    // its reader reconnects under the consumer as it now is.
    for (const [name, stream] of [...this.#streams]) {
      const c = all.get(name);
      if (!c || c.type !== 'stream' || accountsKey(c.accounts) !== stream.accounts) {
        this.#streams.delete(name);
        stream.end();
      }
    }
    for (const name of [...this.#given.keys()]) if (!all.has(name)) this.#given.delete(name);
    const wanted = new Map([...all.values()].filter((c) => c.type === 'webhook').map((c) => [c.name, c]));
    // A loop that ended by itself (its consumer was gone at one step) gives its lock back; if the
    // consumer is wanted (again), it starts anew below, here or on another daemon.
    for (const [name, loop] of [...this.#webhooks]) {
      if (!loop.ended) continue;
      this.#webhooks.delete(name);
      await this.#locks?.release(name);
    }
    const stopping: Promise<void>[] = [];
    for (const [name, loop] of this.#webhooks) {
      if (!wanted.has(name)) {
        stopping.push(loop.stop().then(() => this.#locks?.release(name)));
        this.#webhooks.delete(name);
      }
    }
    await Promise.all(stopping);
    for (const name of wanted.keys()) {
      if (this.#webhooks.has(name)) continue;
      if (this.#locks) {
        if (!(await this.#locks.tryTake(name))) continue; // another daemon delivers it
        // A reconcile that ran meanwhile started it (a session's locks stack: this take is given back).
        if (this.#stopped || this.#webhooks.has(name)) {
          await this.#locks.release(name);
          continue;
        }
      }
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
