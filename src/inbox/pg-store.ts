// The inbox in the shared PostgreSQL store (docs/cluster.md): the rows and the store-once rules of
// the SQLite inbox (store.ts). Only the account's lease holder stores its received messages (a
// fenced transaction). Cursors are given in commit order (migration 4, inbox_cursor), so a reader
// paging by cursor never skips a row that commits after it has read past the row's number.
// Every commit of a new cursor sends a NOTIFY on INBOX_CHANNEL (with the cursor), so every
// daemon's tail (inbox.ts) publishes the row to its own readers at once.
import type { Pool, PoolClient } from 'pg';
import { fencedTx, type Fence } from '../cluster/lease-store.js';
import type { InboundMediaRef, InboundMessage } from '../wa/types.js';
import type { InboxBackend } from './backend.js';
import { effectiveStatus, inboxRowFrom, messageIdFilters, replaces, type InboxCounts, type InboxQuery, type InboxRow, type InboxStatus, type StoreResult, type StoredInboxRow } from './store.js';

const COLUMNS = 'cursor, account, chat, id, sender, chat_type, kind, text, detail, status, offline, timestamp, received_at';
const INSERT_SQL = `INSERT INTO inbox (cursor, account, chat, id, sender, chat_type, kind, text, detail, status, offline, timestamp, received_at, media)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`;

type PgRow = StoredInboxRow & { cursor: string; received_at: string };
const fromPg = inboxRowFrom;

/** The channel a commit of new inbox rows notifies (payload: the cursor). */
export const INBOX_CHANNEL = 'wa_inbox';

/** A message arrived on a connection this daemon no longer holds the lease of. */
export class NotOwnerError extends Error {
  constructor(readonly account: string) {
    super(`account ${account}: this daemon does not hold its lease, so it does not store its messages (WhatsApp offers them again to the owner)`);
    this.name = 'NotOwnerError';
  }
}

export class PgInboxStore implements InboxBackend {
  readonly #pool: Pool;
  readonly #now: () => number;
  readonly #fenceOf: (account: string) => Fence | null;

  constructor(pool: Pool, opts: { now?: () => number; fenceOf?: (account: string) => Fence | null } = {}) {
    this.#pool = pool;
    this.#now = opts.now ?? Date.now;
    this.#fenceOf = opts.fenceOf ?? (() => null);
  }

  /** Stores a received message under the account's lease held by this daemon (see storeFenced). */
  store(account: string, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): Promise<StoreResult> {
    const fence = this.#fenceOf(account);
    return fence ? this.storeFenced(fence, m, status) : Promise.reject(new NotOwnerError(account));
  }

  /**
   * Stores a received message for the fenced account (one transaction). The same message again
   * is the same row; an undecryptable row that now arrives readable moves to a new cursor with its
   * content (its first arrival time kept); a readable row is never replaced by an undecryptable
   * copy. Throws FencedError when the lease is not held.
   */
  async storeFenced(fence: Fence, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): Promise<StoreResult> {
    const account = fence.lease.account;
    const effective = effectiveStatus(m, status);
    const existing = await this.#get(this.#pool, account, m);
    if (existing && !replaces(m, existing)) return { row: fromPg(existing), changed: false };
    return fencedTx(this.#pool, fence.owner, fence.lease, async (c) => {
      // Locked: a concurrent store of the same message waits here, then finds it stored.
      const current = (await c.query<PgRow>(`SELECT ${COLUMNS} FROM inbox WHERE account = $1 AND chat = $2 AND id = $3 FOR UPDATE`, [account, m.chat, m.id])).rows[0];
      if (current && !replaces(m, current)) return { row: fromPg(current), changed: false };
      if (current) await c.query('DELETE FROM inbox WHERE cursor = $1', [current.cursor]);
      // Last before the commit: the cursor, in commit order.
      const cursor = (await c.query<{ n: string }>('UPDATE inbox_cursor SET n = n + 1 RETURNING n')).rows[0]!.n;
      // Delivered at the commit, and not at all on a rollback.
      await c.query('SELECT pg_notify($1, $2)', [INBOX_CHANNEL, cursor]);
      const values = (receivedAt: string | number) => [cursor, account, m.chat, m.id, m.from, m.chatType, m.kind, m.text, m.detail ? JSON.stringify(m.detail) : null, effective, m.offline === true, m.timestamp, receivedAt, m.media ? JSON.stringify(m.media) : null];
      const r = await c.query<PgRow>(`${INSERT_SQL} ON CONFLICT (account, chat, id) DO NOTHING RETURNING ${COLUMNS}`, values(current ? current.received_at : this.#now()));
      const inserted = r.rows[0];
      if (inserted) return { row: fromPg(inserted), changed: true };
      // A first copy another transaction committed meanwhile (there was no row to lock before). It
      // stands, unless this copy replaces it (a readable one racing an undecryptable first copy):
      // then it goes, and this copy takes the cursor already drawn (the counter is still held).
      const other = (await c.query<PgRow>(`SELECT ${COLUMNS} FROM inbox WHERE account = $1 AND chat = $2 AND id = $3 FOR UPDATE`, [account, m.chat, m.id])).rows[0]!;
      if (!replaces(m, other)) return { row: fromPg(other), changed: false };
      await c.query('DELETE FROM inbox WHERE cursor = $1', [other.cursor]);
      const again = await c.query<PgRow>(`${INSERT_SQL} RETURNING ${COLUMNS}`, values(other.received_at));
      return { row: fromPg(again.rows[0]!), changed: true };
    });
  }

  /** Rows after a cursor, oldest first. */
  async list(q: InboxQuery): Promise<InboxRow[]> {
    const where = ['cursor > $1', 'status = ANY($2::text[])'];
    const params: unknown[] = [q.after ?? 0, [...q.statuses]];
    if (q.accounts?.length) (params.push([...q.accounts]), where.push(`account = ANY($${params.length}::text[])`));
    if (q.chats?.length) (params.push([...q.chats]), where.push(`chat = ANY($${params.length}::text[])`));
    params.push(q.limit);
    const r = await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM inbox WHERE ${where.join(' AND ')} ORDER BY cursor LIMIT $${params.length}`, params);
    return r.rows.map(fromPg);
  }

  /** Readable rows of the chats not yet marked read, up to a cursor (all when absent), oldest first. */
  async unread(account: string, chats: string | readonly string[], upTo?: number): Promise<InboxRow[]> {
    const list = typeof chats === 'string' ? [chats] : [...chats];
    const r = await this.#pool.query<PgRow>(
      `SELECT ${COLUMNS} FROM inbox WHERE account = $1 AND chat = ANY($2::text[]) AND cursor <= $3 AND status = 'ok' AND read_at IS NULL ORDER BY cursor`,
      [account, list, upTo ?? Number.MAX_SAFE_INTEGER],
    );
    return r.rows.map(fromPg);
  }

  /** Records that read receipts went out for these rows. */
  async markRead(cursors: readonly number[], at = this.#now()): Promise<void> {
    if (cursors.length) await this.#pool.query('UPDATE inbox SET read_at = $1 WHERE cursor = ANY($2::bigint[])', [at, [...cursors]]);
  }

  /** The row at a cursor, if any. */
  async byCursor(cursor: number): Promise<InboxRow | null> {
    const r = (await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM inbox WHERE cursor = $1`, [cursor])).rows[0];
    return r ? fromPg(r) : null;
  }

  /** Rows with a WhatsApp message id, oldest first, limited to accounts, chats and statuses when given. */
  async byMessageId(id: string, q: { accounts?: readonly string[]; chats?: readonly string[]; statuses: readonly InboxStatus[] }): Promise<InboxRow[]> {
    const where = ['id = $1'];
    const params: unknown[] = [id];
    for (const [column, values] of messageIdFilters(q)) {
      params.push([...values]);
      where.push(`${column} = ANY($${params.length}::text[])`);
    }
    return (await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM inbox WHERE ${where.join(' AND ')} ORDER BY cursor`, params)).rows.map(fromPg);
  }

  /** What downloading a row's media file needs, or null (secret: never part of InboxRow). */
  async mediaRef(cursor: number): Promise<InboundMediaRef | null> {
    const r = (await this.#pool.query<{ media: string | null }>('SELECT media FROM inbox WHERE cursor = $1', [cursor])).rows[0];
    return r?.media ? (JSON.parse(r.media) as InboundMediaRef) : null;
  }

  /** Replaces a row's download reference (the sender's phone uploaded the file again). */
  async updateMediaRef(cursor: number, ref: InboundMediaRef): Promise<void> {
    await this.#pool.query('UPDATE inbox SET media = $1 WHERE cursor = $2', [JSON.stringify(ref), cursor]);
  }

  /**
   * Retention: deletes rows received before `cutoff` that every consumer that should see them has
   * acknowledged (the consumers of the whole cluster: they are in this store too).
   */
  async pruneAcknowledged(cutoff: number): Promise<number> {
    const r = await this.#pool.query(
      `DELETE FROM inbox WHERE received_at < $1 AND (status = 'ignored' OR NOT EXISTS (
         SELECT 1 FROM inbox_consumers c WHERE c.cursor < inbox.cursor
           AND (c.accounts IS NULL OR EXISTS (SELECT 1 FROM json_array_elements_text(c.accounts::json) a WHERE a = inbox.account))))`,
      [cutoff],
    );
    return r.rowCount ?? 0;
  }

  /** The operator's prune: deletes every row received before `cutoff`, acknowledged or not. */
  async pruneAll(cutoff: number): Promise<number> {
    return (await this.#pool.query('DELETE FROM inbox WHERE received_at < $1', [cutoff])).rowCount ?? 0;
  }

  /** The highest cursor ever given (0 before the first row), deleted rows included. */
  async lastCursor(): Promise<number> {
    return Number((await this.#pool.query<{ n: string }>('SELECT n FROM inbox_cursor')).rows[0]!.n);
  }

  /** Row counts per account and status. */
  async countsByAccount(): Promise<InboxCounts> {
    const r = await this.#pool.query<{ account: string; status: InboxStatus; n: string }>('SELECT account, status, count(*) AS n FROM inbox GROUP BY account, status');
    const out: InboxCounts = new Map();
    for (const row of r.rows) out.set(row.account, { ...out.get(row.account), [row.status]: Number(row.n) });
    return out;
  }

  async #get(c: Pool | PoolClient, account: string, m: InboundMessage): Promise<PgRow | undefined> {
    return (await c.query<PgRow>(`SELECT ${COLUMNS} FROM inbox WHERE account = $1 AND chat = $2 AND id = $3`, [account, m.chat, m.id])).rows[0];
  }
}
