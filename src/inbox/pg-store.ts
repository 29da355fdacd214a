// The inbox in the shared PostgreSQL store (docs/cluster.md): the rows and the store-once rules of
// the SQLite inbox (store.ts). Only the account's lease holder stores its received messages (a
// fenced transaction). Cursors are given in commit order (migration 4, inbox_cursor), so a reader
// paging by cursor never skips a row that commits after it has read past the row's number.
//
// So far the core a receiver and a reader need: store, list, last cursor, counts. The rest of the
// SQLite inbox's surface (read marks, media references, retention) comes with the daemon's
// cluster mode.
import type { Pool, PoolClient } from 'pg';
import { fencedTx, type Fence } from '../cluster/lease-store.js';
import type { InboundMessage } from '../wa/types.js';
import { effectiveStatus, inboxRowFrom, replaces, type InboxCounts, type InboxQuery, type InboxRow, type InboxStatus, type StoreResult, type StoredInboxRow } from './store.js';

const COLUMNS = 'cursor, account, chat, id, sender, chat_type, kind, text, detail, status, offline, timestamp, received_at';
const INSERT_SQL = `INSERT INTO inbox (cursor, account, chat, id, sender, chat_type, kind, text, detail, status, offline, timestamp, received_at, media)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`;

type PgRow = StoredInboxRow & { cursor: string; received_at: string };
const fromPg = inboxRowFrom;

export class PgInboxStore {
  readonly #pool: Pool;
  readonly #now: () => number;

  constructor(pool: Pool, opts: { now?: () => number } = {}) {
    this.#pool = pool;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Stores a received message for the fenced account (one transaction). The same message again
   * is the same row; an undecryptable row that now arrives readable moves to a new cursor with its
   * content (its first arrival time kept); a readable row is never replaced by an undecryptable
   * copy. Throws FencedError when the lease is not held.
   */
  async store(fence: Fence, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): Promise<StoreResult> {
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
