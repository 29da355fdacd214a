// The inbound half of the daemon: every message an account receives is committed here before
// anything else happens to it (the connection emits it between decryption and the delivery
// receipt, see src/wa/inbound-capture.ts), then published, then handed to followers.
import type { EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import type { InboundMessage, WaEvent } from '../wa/types.js';
import { type InboxRow, type InboxStore, type StoreResult, inboxRowToJson } from './store.js';

/** What the inbox listens to: an account runner's connection events. */
export interface InboxAccount {
  onConnectionEvent(listener: (e: WaEvent) => void): () => void;
}

/** Per account, the only senders (or chats) whose messages are delivered; absent = everyone. */
export type AllowFrom = Readonly<Record<string, readonly string[]>>;

/** Receives, stores and publishes inbound messages. */
export class Inbox {
  readonly store: InboxStore;
  readonly #bus: Pick<EventBus, 'publish'>;
  readonly #log: Log;
  readonly #phoneJidForLid: (account: string | undefined, lidJid: string) => string | null;
  readonly #lidJidForPhone: (account: string | undefined, phoneJid: string) => string | null;
  readonly #attached = new Map<string, () => void>();
  readonly #followers = new Set<(row: InboxRow) => void>();
  #allowFrom = new Map<string, Set<string>>();

  constructor(opts: {
    store: InboxStore;
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
      if (e.type === 'inbound') this.receive(accountId, e.message);
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
   * to readers. Throws when the commit fails: the caller must then not acknowledge the message.
   */
  receive(account: string, message: InboundMessage): StoreResult {
    let result: StoreResult;
    try {
      result = this.store.store(account, message, this.#allowed(account, message) ? 'ok' : 'ignored');
    } catch (err) {
      this.#log.error({ err, account, id: message.id }, 'could not store an inbound message; it is not acknowledged, so WhatsApp will offer it again');
      throw err;
    }
    if (!result.changed) return result;
    const row = result.row;
    if (row.status === 'ignored') {
      // The operator sees that something was refused, and from whom; never what it said.
      this.#bus.publish({ type: 'message.ignored', account, cursor: String(row.cursor), id: row.id, chat: row.chat, from: row.from, kind: row.kind });
      return result;
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
    return result;
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
