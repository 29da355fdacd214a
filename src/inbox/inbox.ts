// The inbound half of the daemon: every message an account receives is committed here before
// anything else happens to it (the connection emits it between decryption and the delivery
// receipt, see src/wa/inbound-capture.ts), then published, then handed to followers.
//
// On one host the daemon that stores a row publishes it at once. In a cluster (docs/cluster.md)
// rows are stored by whichever daemon owns the account, and every daemon publishes every row
// through its tail: it reads the shared inbox in cursor order after the last row it published,
// when a commit anywhere notifies it (`poke`) and on a sweep. Cursors are given in commit order,
// so the tail never skips a row, and each daemon publishes each row once.
import type { EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import type { Awaitable } from '../outbox/backend.js';
import type { InboundMessage, WaEvent } from '../wa/types.js';
import type { InboxBackend } from './backend.js';
import { type InboxRow, type InboxStatus, type StoreResult, inboxRowToJson } from './store.js';

/** Rows the tail reads per query. */
const TAIL_PAGE = 500;
const ALL_STATUSES: readonly InboxStatus[] = ['ok', 'undecryptable', 'ignored'];

/** What the inbox listens to: an account runner's connection events. */
export interface InboxAccount {
  onConnectionEvent(listener: (e: WaEvent) => void): () => void;
}

/** Per account, the only senders (or chats) whose messages are delivered; absent = everyone. */
export type AllowFrom = Readonly<Record<string, readonly string[]>>;

/** Receives, stores and publishes inbound messages. */
export class Inbox<S extends InboxBackend = InboxBackend> {
  readonly store: S;
  readonly #bus: Pick<EventBus, 'publish'>;
  readonly #log: Log;
  readonly #phoneJidForLid: (account: string | undefined, lidJid: string) => string | null;
  readonly #lidJidForPhone: (account: string | undefined, phoneJid: string) => string | null;
  readonly #attached = new Map<string, () => void>();
  readonly #followers = new Set<(row: InboxRow) => void>();
  #allowFrom = new Map<string, Set<string>>();
  /** In a cluster: the last cursor published, and the tail's state. */
  #tail: { after: number; running: boolean; again: boolean; sweep: NodeJS.Timeout | null } | null = null;

  constructor(opts: {
    store: S;
    bus: Pick<EventBus, 'publish'>;
    log: Log;
    allowFrom?: AllowFrom;
    /** The phone-number JID behind a LID sender, when the account knows it (allowFrom lists numbers). */
    phoneJidForLid?: (account: string | undefined, lidJid: string) => string | null;
    /** The LID JID behind a phone-number JID, when an account (any, without one) knows it. */
    lidJidForPhone?: (account: string | undefined, phoneJid: string) => string | null;
  }) {
    this.store = opts.store;
    this.#bus = opts.bus;
    this.#log = opts.log;
    this.#phoneJidForLid = opts.phoneJidForLid ?? (() => null);
    this.#lidJidForPhone = opts.lidJidForPhone ?? (() => null);
    this.setAllowFrom(opts.allowFrom ?? {});
  }

  /**
   * The chats one person's messages may be stored under: `jid` itself and, for a phone number,
   * the LID WhatsApp also addresses them by, when known (and the number behind a LID). A reader
   * asking for `+15550001111` then sees the messages that came from that person's LID chat too.
   */
  chatsOf(account: string | undefined, jid: string): string[] {
    if (jid.endsWith('@s.whatsapp.net')) {
      const lid = this.#lidJidForPhone(account, jid);
      return lid ? [jid, lid] : [jid];
    }
    if (jid.endsWith('@lid')) {
      const phone = this.#phoneJidForLid(account, jid);
      return phone ? [jid, phone] : [jid];
    }
    return [jid];
  }

  /** Replaces the allowFrom lists (config load and reload); applies to messages arriving from now on. */
  setAllowFrom(allowFrom: AllowFrom): void {
    this.#allowFrom = new Map(Object.entries(allowFrom).map(([account, list]) => [account, new Set(list)]));
  }

  /** Listens to an account's connections (replacing an earlier attachment of the same id). */
  attach(accountId: string, account: InboxAccount): void {
    this.#attached.get(accountId)?.();
    const unsubscribe = account.onConnectionEvent((e) => {
      if (e.type !== 'inbound') return;
      const stored = this.receive(accountId, e.message);
      // An async store: the delivery receipt waits for the commit (and is not sent if it fails).
      if (!(stored instanceof Promise)) return;
      if (e.waitFor) e.waitFor(stored);
      else stored.catch(() => undefined); // nothing waits (already said in the log)
    });
    this.#attached.set(accountId, unsubscribe);
  }

  /** Stops listening to a removed account (its rows stay). */
  detach(accountId: string): void {
    this.#attached.get(accountId)?.();
    this.#attached.delete(accountId);
  }

  /** Accounts listened to (for tests). */
  get attachedCount(): number {
    return this.#attached.size;
  }

  /**
   * Stores a message (one commit), then publishes it and hands it to followers when it is new
   * to readers. Throws (or rejects, with an async store) when the commit fails: the caller must
   * then not acknowledge the message.
   */
  receive(account: string, message: InboundMessage): ReturnType<S['store']> {
    return this.#receive(account, message) as ReturnType<S['store']>;
  }

  #receive(account: string, message: InboundMessage): Awaitable<StoreResult> {
    const failed = (err: unknown): never => {
      this.#log.error({ err, account, id: message.id }, 'could not store an inbound message; it is not acknowledged, so WhatsApp will offer it again');
      throw err;
    };
    let result: Awaitable<StoreResult>;
    try {
      result = this.store.store(account, message, this.#allowed(account, message) ? 'ok' : 'ignored');
    } catch (err) {
      return failed(err);
    }
    if (result instanceof Promise) {
      return result.then((r) => {
        if (r.changed) this.#stored(r.row);
        return r;
      }, failed);
    }
    if (result.changed) this.#stored(result.row);
    return result;
  }

  /**
   * Publishes rows stored anywhere in a cluster, in cursor order, from the next cursor on (see
   * the top of this file); `sweepMs` covers a notification that never came.
   */
  async startTail(sweepMs = 2000): Promise<void> {
    const after = await this.store.lastCursor();
    const sweep = setInterval(() => this.poke(), sweepMs);
    sweep.unref();
    this.#tail = { after, running: false, again: false, sweep };
  }

  /** A commit somewhere: the tail reads what is new (runs are never concurrent). */
  poke(): void {
    const tail = this.#tail;
    if (!tail) return;
    if (tail.running) {
      tail.again = true;
      return;
    }
    tail.running = true;
    void (async () => {
      try {
        do {
          tail.again = false;
          for (;;) {
            const page = await this.store.list({ after: tail.after, limit: TAIL_PAGE, statuses: ALL_STATUSES });
            if (this.#tail !== tail) return; // stopped meanwhile
            for (const row of page) {
              tail.after = row.cursor;
              this.#publish(row);
            }
            if (page.length < TAIL_PAGE) break;
          }
        } while (tail.again && this.#tail === tail);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'inbox tail: the shared store did not answer; trying again at the next notification or sweep');
      } finally {
        tail.running = false;
      }
    })();
  }

  /** Stops the tail (daemon stop). */
  stopTail(): void {
    if (this.#tail?.sweep) clearInterval(this.#tail.sweep);
    this.#tail = null;
  }

  /** A row new to readers was committed by this daemon: published now, or by the tail in a cluster. */
  #stored(row: InboxRow): void {
    if (this.#tail) this.poke();
    else this.#publish(row);
  }

  #publish(row: InboxRow): void {
    const account = row.account;
    if (row.status === 'ignored') {
      // The operator sees that something was refused, and from whom; never what it said.
      this.#bus.publish({ type: 'message.ignored', account, cursor: String(row.cursor), id: row.id, chat: row.chat, from: row.from, kind: row.kind });
      return;
    }
    const { account: _a, ...fields } = inboxRowToJson(row);
    this.#bus.publish({ type: 'message.inbound', account, ...fields });
    for (const follower of this.#followers) {
      try {
        follower(row);
      } catch (err) {
        this.#log.error({ err }, 'inbox follower failed');
      }
    }
  }

  /** Calls `listener` with every row readers should see, right after it is committed. */
  follow(listener: (row: InboxRow) => void): () => void {
    this.#followers.add(listener);
    return () => this.#followers.delete(listener);
  }

  #allowed(account: string, m: InboundMessage): boolean {
    const allow = this.#allowFrom.get(account);
    if (!allow) return true;
    if (allow.has(m.from) || allow.has(m.chat)) return true;
    if (m.from.endsWith('@lid')) {
      const phone = this.#phoneJidForLid(account, m.from);
      if (phone && allow.has(phone)) return true;
    } else {
      // A LID on the list admits its person when the stanza is addressed by phone number.
      for (const entry of allow) if (entry.endsWith('@lid') && this.#phoneJidForLid(account, entry) === m.from) return true;
    }
    return false;
  }
}
