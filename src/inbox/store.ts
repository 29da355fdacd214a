// The inbox table: every inbound message as one row per (account, chat, message id), committed
// before WhatsApp is sent the delivery receipt (docs/inbox.md). A row's cursor only grows: new
// rows get the next one, and a row that changes in a way a reader must see again (an
// undecryptable message that a retry decrypted) moves to a new cursor.
import type { StateDb } from '../store/db.js';
import type { InboxBackend } from './backend.js';
import { writeTx } from '../store/db.js';
import type { InboundChatType, InboundKind, InboundMediaRef, InboundMessage } from '../wa/types.js';

/**
 * `ok`: a message to deliver. `undecryptable`: it arrived but could not be read (counted in
 * status). `ignored`: its sender is not in the account's `allowFrom`; kept for the operator,
 * never delivered to consumers.
 */
export type InboxStatus = 'ok' | 'undecryptable' | 'ignored';

/** One inbound message as stored. */
export interface InboxRow {
  cursor: number;
  account: string;
  chat: string;
  id: string;
  from: string;
  chatType: InboundChatType;
  kind: InboundKind;
  text: string | null;
  detail: Record<string, unknown> | null;
  status: InboxStatus;
  offline: boolean;
  /** Seconds since the epoch, as WhatsApp stamped it. */
  timestamp: number;
  /** When the daemon first stored it (epoch ms). */
  receivedAt: number;
}

/** What storing a message did. */
export interface StoreResult {
  /** The row as it now is. */
  row: InboxRow;
  /** True when readers have something new: a new row, or a row moved to a new cursor. */
  changed: boolean;
}

/** A row as the API and the CLI show it (`--json`: one per line). */
export function inboxRowToJson(r: InboxRow): Record<string, unknown> {
  return {
    cursor: String(r.cursor),
    id: r.id,
    account: r.account,
    chat: r.chat,
    from: r.from,
    chatType: r.chatType,
    kind: r.kind,
    text: r.text,
    timestamp: r.timestamp,
    receivedAt: new Date(r.receivedAt).toISOString(),
    status: r.status,
    ...(r.detail ? { detail: r.detail } : {}),
    ...(r.offline ? { offline: true } : {}),
  };
}

/** A page query: rows after a cursor, oldest first. */
export interface InboxQuery {
  accounts?: readonly string[];
  /** One person's or group's chats: a phone number's JID and its LID are two chats of one person. */
  chats?: readonly string[];
  after?: number;
  limit: number;
  statuses: readonly InboxStatus[];
}

/** An inbox row as either store reads it (PostgreSQL answers bigints as strings and booleans as booleans). */
export interface StoredInboxRow {
  cursor: number | string;
  account: string;
  chat: string;
  id: string;
  sender: string;
  chat_type: string;
  kind: string;
  text: string | null;
  detail: string | null;
  status: string;
  offline: number | boolean;
  timestamp: number | string;
  received_at: number | string;
}
type DbRow = StoredInboxRow & { cursor: number; received_at: number };

/** A stored row as both stores answer it. */
export function inboxRowFrom(r: StoredInboxRow): InboxRow {
  return {
    cursor: Number(r.cursor),
    account: r.account,
    chat: r.chat,
    id: r.id,
    from: r.sender,
    chatType: r.chat_type as InboundChatType,
    kind: r.kind as InboundKind,
    text: r.text,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
    status: r.status as InboxStatus,
    offline: r.offline === 1 || r.offline === true,
    timestamp: Number(r.timestamp),
    receivedAt: Number(r.received_at),
  };
}
const fromDb = inboxRowFrom;

/** Row counts per account and status. */
export type InboxCounts = Map<string, Partial<Record<InboxStatus, number>>>;

/** The status a received message is stored with: an undecryptable one is `undecryptable` unless ignored. */
export function effectiveStatus(m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): InboxStatus {
  return m.kind === 'undecryptable' ? (status === 'ignored' ? 'ignored' : 'undecryptable') : status;
}

/** Whether a message arriving again replaces the stored row: only a readable copy of an undecryptable one does. */
export function replaces(m: InboundMessage, stored: { kind: string }): boolean {
  return stored.kind === 'undecryptable' && m.kind !== 'undecryptable';
}

/** The column filters of a lookup by message id that narrow it (absent or empty lists do not). */
export function messageIdFilters(q: { accounts?: readonly string[]; chats?: readonly string[]; statuses: readonly InboxStatus[] }): Array<[column: string, values: readonly string[]]> {
  const all: Array<[string, readonly string[] | undefined]> = [
    ['account', q.accounts],
    ['chat', q.chats],
    ['status', q.statuses],
  ];
  return all.filter((f): f is [string, readonly string[]] => !!f[1]?.length);
}

/** Reads and writes the inbox table. */
export class InboxStore implements InboxBackend {
  readonly #db: StateDb;
  readonly #now: () => number;
  readonly #get;
  readonly #insert;
  readonly #delete;
  /** Rows per account and status, counted once at open and kept by every write (status reads it). */
  #counts: InboxCounts | null = null;

  constructor(db: StateDb, opts: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    this.#get = db.prepare<[string, string, string], DbRow>('SELECT * FROM inbox WHERE account = ? AND chat = ? AND id = ?');
    this.#insert = db.prepare<unknown[], DbRow>(
      `INSERT INTO inbox (account, chat, id, sender, chat_type, kind, text, detail, status, offline, timestamp, received_at, media)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    );
    this.#delete = db.prepare<[number]>('DELETE FROM inbox WHERE cursor = ?');
  }

  /**
   * Stores a received message (one commit). The same message again is the same row: a copy
   * from the offline queue, a redelivery after a crash, or the upsert backstop change nothing.
   * An undecryptable row that now arrives readable moves to a new cursor with its content (its
   * first arrival time is kept); a readable row is never replaced by an undecryptable copy.
   */
  store(account: string, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): StoreResult {
    const effective = effectiveStatus(m, status);
    const existing = this.#get.get(account, m.chat, m.id);
    if (existing && !replaces(m, existing)) return { row: fromDb(existing), changed: false };
    const row = this.#recountOnError(() => writeTx(this.#db, () => {
      const current = this.#get.get(account, m.chat, m.id);
      if (current && !replaces(m, current)) return null;
      if (current) {
        this.#delete.run(current.cursor);
        this.#count(account, current.status as InboxStatus, -1);
      }
      this.#count(account, effective, 1);
      return this.#insert.get(
        account,
        m.chat,
        m.id,
        m.from,
        m.chatType,
        m.kind,
        m.text,
        m.detail ? JSON.stringify(m.detail) : null,
        effective,
        m.offline ? 1 : 0,
        m.timestamp,
        current?.received_at ?? this.#now(),
        m.media ? JSON.stringify(m.media) : null,
      );
    }));
    if (!row) return { row: fromDb(this.#get.get(account, m.chat, m.id)!), changed: false };
    return { row: fromDb(row), changed: true };
  }

  /** Rows after a cursor, oldest first. */
  list(q: InboxQuery): InboxRow[] {
    const where: string[] = ['cursor > ?'];
    const params: unknown[] = [q.after ?? 0];
    if (q.accounts?.length) {
      where.push(`account IN (${q.accounts.map(() => '?').join(', ')})`);
      params.push(...q.accounts);
    }
    if (q.chats?.length) {
      where.push(`chat IN (${q.chats.map(() => '?').join(', ')})`);
      params.push(...q.chats);
    }
    where.push(`status IN (${q.statuses.map(() => '?').join(', ')})`);
    params.push(...q.statuses);
    params.push(q.limit);
    const rows = this.#db.prepare<unknown[], DbRow>(`SELECT * FROM inbox WHERE ${where.join(' AND ')} ORDER BY cursor LIMIT ?`).all(...params);
    return rows.map(fromDb);
  }

  /** Readable rows of the chats not yet marked read, up to a cursor (all when absent), oldest first. */
  unread(account: string, chats: string | readonly string[], upTo?: number): InboxRow[] {
    const list = typeof chats === 'string' ? [chats] : chats;
    return this.#db
      .prepare<unknown[], DbRow>(
        `SELECT * FROM inbox WHERE account = ? AND chat IN (${list.map(() => '?').join(', ')}) AND cursor <= ? AND status = 'ok' AND read_at IS NULL ORDER BY cursor`,
      )
      .all(account, ...list, upTo ?? Number.MAX_SAFE_INTEGER)
      .map(fromDb);
  }

  /** Records that read receipts went out for these rows. */
  markRead(cursors: readonly number[], at = this.#now()): void {
    writeTx(this.#db, () => {
      const mark = this.#db.prepare('UPDATE inbox SET read_at = ? WHERE cursor = ?');
      for (const c of cursors) mark.run(at, c);
    });
  }

  /** The row at a cursor, if any. */
  byCursor(cursor: number): InboxRow | null {
    const r = this.#db.prepare<[number], DbRow>('SELECT * FROM inbox WHERE cursor = ?').get(cursor);
    return r ? fromDb(r) : null;
  }

  /**
   * Rows with a WhatsApp message id, oldest first, limited to accounts, chats and statuses when
   * given. One id can be several rows: two accounts, or two chats of one account.
   */
  byMessageId(id: string, q: { accounts?: readonly string[]; chats?: readonly string[]; statuses: readonly InboxStatus[] }): InboxRow[] {
    const where: string[] = ['id = ?'];
    const params: unknown[] = [id];
    for (const [column, values] of messageIdFilters(q)) {
      where.push(`${column} IN (${values.map(() => '?').join(', ')})`);
      params.push(...values);
    }
    return this.#db.prepare<unknown[], DbRow>(`SELECT * FROM inbox WHERE ${where.join(' AND ')} ORDER BY cursor`).all(...params).map(fromDb);
  }

  /**
   * What downloading a row's media file needs, or null: not a media message, or stored before
   * media references were kept. Secret (keys); never part of InboxRow.
   */
  mediaRef(cursor: number): InboundMediaRef | null {
    const r = this.#db.prepare<[number], { media: string | null }>('SELECT media FROM inbox WHERE cursor = ?').get(cursor);
    return r?.media ? (JSON.parse(r.media) as InboundMediaRef) : null;
  }

  /** Replaces a row's download reference (the sender's phone uploaded the file again: a new path). */
  updateMediaRef(cursor: number, ref: InboundMediaRef): void {
    writeTx(this.#db, () => this.#db.prepare('UPDATE inbox SET media = ? WHERE cursor = ?').run(JSON.stringify(ref), cursor));
  }

  /** The highest cursor ever given (0 before the first row), deleted rows included. */
  lastCursor(): number {
    const r = this.#db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'").get();
    return r?.seq ?? 0;
  }

  /**
   * Retention: deletes rows received before `cutoff` (epoch ms) that every consumer that should
   * see them has acknowledged (a consumer with no `accounts` sees every account; `ignored` rows
   * are seen by none). Returns how many went.
   */
  pruneAcknowledged(cutoff: number): number {
    return this.#afterDelete(writeTx(this.#db, () =>
      this.#db
        .prepare(
          `DELETE FROM inbox WHERE received_at < ? AND (status = 'ignored' OR NOT EXISTS (
             SELECT 1 FROM inbox_consumers c WHERE c.cursor < inbox.cursor
               AND (c.accounts IS NULL OR EXISTS (SELECT 1 FROM json_each(c.accounts) WHERE value = inbox.account))))`,
        )
        .run(cutoff).changes,
    ));
  }

  /** The operator's prune: deletes every row received before `cutoff`, acknowledged or not. */
  pruneAll(cutoff: number): number {
    return this.#afterDelete(writeTx(this.#db, () => this.#db.prepare('DELETE FROM inbox WHERE received_at < ?').run(cutoff).changes));
  }

  /**
   * Row counts per account and status. From memory: counted with one query when first asked
   * and kept by this store's writes since (the daemon is the database's only writer), so status
   * of thousands of accounts does not scan the inbox. A copy: callers may not change it.
   */
  countsByAccount(): InboxCounts {
    const counts = this.#loadCounts();
    return new Map([...counts].map(([account, c]) => [account, { ...c }]));
  }

  /** The same counts without the copy, for a caller that only reads them at once (status of thousands of accounts). */
  countsView(): ReadonlyMap<string, Readonly<Partial<Record<InboxStatus, number>>>> {
    return this.#loadCounts();
  }

  #loadCounts(): InboxCounts {
    if (this.#counts) return this.#counts;
    const out: InboxCounts = new Map();
    for (const r of this.#db.prepare<[], { account: string; status: InboxStatus; n: number }>('SELECT account, status, count(*) AS n FROM inbox GROUP BY account, status').all()) {
      const c = out.get(r.account) ?? {};
      c[r.status] = r.n;
      out.set(r.account, c);
    }
    this.#counts = out;
    return out;
  }

  #count(account: string, status: InboxStatus, delta: number): void {
    if (!this.#counts) return; // not loaded yet: the first read counts the table
    const c = this.#counts.get(account) ?? {};
    const n = (c[status] ?? 0) + delta;
    if (n > 0) c[status] = n;
    else delete c[status];
    if (Object.keys(c).length) this.#counts.set(account, c);
    else this.#counts.delete(account);
  }

  /** A write that failed may have counted rows it did not commit: count again on the next read. */
  #recountOnError<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.#counts = null;
      throw err;
    }
  }

  /** Retention deletes rows by age across accounts: count again on the next read (rare). */
  #afterDelete(deleted: number): number {
    if (deleted > 0) this.#counts = null;
    return deleted;
  }
}
