// Delivery to one webhook consumer: each readable message after the consumer's cursor is POSTed,
// in cursor order (so in order per chat), one at a time; a 2xx commits the cursor. A failure is
// retried with exponential backoff and full jitter; the attempt count and the time of the next
// try are kept on the consumer's row, so a daemon restart resumes the backoff instead of
// hammering a receiver that is down. A message still refused once it is older than
// `deadLetterAfterMs` goes to the consumer's dead-letter list with a consumer_stuck alert, and
// delivery moves on: never a silent drop.
import { createHmac } from 'node:crypto';
import type { Log } from '../log.js';
import { CONSUMED_STATUSES, type ConsumerBackend } from './consumers.js';
import type { Inbox } from './inbox.js';
import { type InboxRow, inboxRowToJson } from './store.js';

/** Webhook delivery settings (config `inbox.*`). */
export interface WebhookSettings {
  retryInitialMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  deadLetterAfterMs: number;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  retryInitialMs: 1000,
  retryMaxMs: 60_000,
  timeoutMs: 10_000,
  deadLetterAfterMs: 24 * 3600 * 1000,
};

/** A message is dead-lettered only after this many failed attempts, however old it is. */
export const DEAD_LETTER_MIN_ATTEMPTS = 3;

/** The headers every delivery carries. */
export const SIGNATURE_HEADER = 'X-WA-Supervisor-Signature';
export const DELIVERY_HEADER = 'X-WA-Supervisor-Delivery';

/** POSTs a body; resolves with the HTTP status, rejects on a network error, a timeout or the signal. */
export type Poster = (url: string, body: string, headers: Record<string, string>, timeoutMs: number, signal?: AbortSignal) => Promise<number>;

/** The default poster: fetch with a timeout. */
export const fetchPoster: Poster = async (url, body, headers, timeoutMs, signal) => {
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(url, { method: 'POST', body, headers, signal: signal ? AbortSignal.any([timeout, signal]) : timeout, redirect: 'manual' });
  await res.body?.cancel();
  return res.status;
};

/** The delivery id of a message for a consumer: the same on every retry, so receivers can dedupe. */
export function deliveryId(consumer: string, row: Pick<InboxRow, 'cursor'>): string {
  return `${consumer}.${row.cursor}`;
}

/** `sha256=<hex HMAC-SHA256 of the body>`. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** What a consumer_stuck alert says. */
export interface StuckContext {
  consumer: string;
  cursor: number;
  id: string;
  account: string;
  ageMs: number;
  error: string;
}

/** One webhook consumer's delivery loop. */
export class WebhookDelivery {
  readonly name: string;
  readonly #consumers: ConsumerBackend;
  readonly #inbox: Pick<Inbox, 'store' | 'follow'>;
  readonly #settings: () => WebhookSettings;
  readonly #post: Poster;
  readonly #onStuck: (context: StuckContext) => void;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #random: () => number;
  #stopped = false;
  /** Aborts the POST in flight when the loop stops, so a hanging receiver cannot hold up shutdown. */
  readonly #abort = new AbortController();
  #wake: (() => void) | null = null;
  /** A poke that came while nothing slept (during a read of the store): the next sleep returns at once. */
  #poked = false;
  #timer: NodeJS.Timeout | null = null;
  #loop: Promise<void> | null = null;
  #ended = false;
  #unfollow: (() => void) | null = null;

  constructor(opts: {
    name: string;
    consumers: ConsumerBackend;
    inbox: Pick<Inbox, 'store' | 'follow'>;
    settings: () => WebhookSettings;
    log: Log;
    post?: Poster;
    onStuck: (context: StuckContext) => void;
    now?: () => number;
    random?: () => number;
  }) {
    this.name = opts.name;
    this.#consumers = opts.consumers;
    this.#inbox = opts.inbox;
    this.#settings = opts.settings;
    this.#post = opts.post ?? fetchPoster;
    this.#onStuck = opts.onStuck;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
  }

  /** Starts delivering. */
  start(): void {
    if (this.#loop) return;
    this.#unfollow = this.#inbox.follow(() => this.#poke());
    this.#loop = this.#run()
      .catch((err) => this.#log.error({ err, consumer: this.name }, 'webhook delivery stopped'))
      .finally(() => {
        this.#ended = true;
        this.#unfollow?.();
      });
  }

  /** True once the loop has ended (stopped, or its consumer was gone or changed at a step). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Stops, aborting the POST in flight, if any: its message stays unacknowledged and is sent again,
   * with the same delivery id, when delivery resumes (at least once).
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#unfollow?.();
    this.#poke();
    await this.#loop;
  }

  #poke(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const wake = this.#wake;
    this.#wake = null;
    if (wake) wake();
    else this.#poked = true;
  }

  /** Waits until poked (a new message, stop) or, with `ms`, until then. */
  #sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#poked) {
        this.#poked = false;
        resolve();
        return;
      }
      this.#wake = resolve;
      if (ms !== undefined) this.#timer = setTimeout(() => this.#poke(), Math.max(0, ms));
    });
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (!(await this.#step())) return;
      } catch (err) {
        // A failed commit (disk full, say) must not end delivery for good: note it, back off, go on.
        const error = `delivery loop failed: ${(err as Error).message}`;
        this.#log.error({ err, consumer: this.name }, 'webhook delivery failed; will retry');
        const wait = Math.max(1, this.#settings().retryInitialMs);
        try {
          await this.#consumers.recordFailure(this.name, error, this.#now() + wait);
        } catch {
          // the database is still failing; the wait below paces the next try
        }
        await this.#sleepUntil(this.#now() + wait);
      }
    }
  }

  /** One delivery step; false when this consumer is gone (the loop ends). */
  async #step(): Promise<boolean> {
    {
      this.#poked = false; // what arrives from here on is either in the read below or pokes again
      const c = await this.#consumers.get(this.name);
      if (!c || c.type !== 'webhook' || !c.url || !c.secret) return false;
      const [row] = await this.#inbox.store.list({ after: c.cursor, ...(c.accounts ? { accounts: c.accounts } : {}), statuses: CONSUMED_STATUSES, limit: 1 });
      if (!row) {
        await this.#sleep();
        return true;
      }
      if (c.nextAttemptAt !== null && c.nextAttemptAt > this.#now()) {
        // A new message does not cut a backoff short: only the timer (or stop) ends this wait.
        await this.#sleepUntil(c.nextAttemptAt);
        return true;
      }
      const body = JSON.stringify({ consumer: this.name, deliveryId: deliveryId(this.name, row), message: inboxRowToJson(row) });
      const headers = {
        'content-type': 'application/json',
        [SIGNATURE_HEADER]: signature(c.secret, body),
        [DELIVERY_HEADER]: deliveryId(this.name, row),
      };
      const s = this.#settings();
      let error: string | null;
      try {
        const status = await this.#post(c.url, body, headers, s.timeoutMs, this.#abort.signal);
        error = status >= 200 && status < 300 ? null : `HTTP ${status}`;
      } catch (err) {
        error = (err as Error).name === 'TimeoutError' ? `no answer within ${s.timeoutMs} ms` : String((err as Error).message ?? err);
      }
      // Stopped or removed meanwhile: neither a 2xx nor the abort is this consumer's to record.
      if (this.#stopped) return false;
      if (error === null) {
        await this.#consumers.ack(this.name, row.cursor);
        return true;
      }
      const ageMs = this.#now() - row.receivedAt;
      // Old rows (a consumer added over a long backlog) get a few tries too, not one.
      if (ageMs >= s.deadLetterAfterMs && c.attempts + 1 >= DEAD_LETTER_MIN_ATTEMPTS) {
        await this.#consumers.deadLetter(this.name, row.cursor, error);
        this.#log.warn({ consumer: this.name, cursor: row.cursor, id: row.id, error }, 'webhook consumer gave up on a message (dead letter)');
        this.#onStuck({ consumer: this.name, cursor: row.cursor, id: row.id, account: row.account, ageMs, error });
        return true;
      }
      const ceiling = Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** Math.min(c.attempts, 30));
      const wait = Math.max(1, Math.floor(this.#random() * ceiling));
      await this.#consumers.recordFailure(this.name, error, this.#now() + wait);
      this.#log.debug({ consumer: this.name, cursor: row.cursor, error, waitMs: wait }, 'webhook delivery failed; will retry');
      return true;
    }
  }

  async #sleepUntil(at: number): Promise<void> {
    while (!this.#stopped && this.#now() < at) {
      await this.#sleep(at - this.#now());
    }
  }
}
