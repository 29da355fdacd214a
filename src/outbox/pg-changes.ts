// The journal of our own messages' state changes in the shared PostgreSQL store (pg migration 8):
// the same rows as the SQLite journal (changes.ts), written by trigger with each change and
// numbered at commit in commit order, so a reader paging by cursor never skips a change that
// committed late. A row not numbered yet (its transaction still open) is not read.
import type { Pool } from 'pg';
import type { OutboxChange, OutboxChangesBackend } from './changes.js';

export class PgOutboxChanges implements OutboxChangesBackend {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /** Changes after a cursor, oldest first. */
  async list(q: { after?: number; accounts?: readonly string[]; limit: number }): Promise<OutboxChange[]> {
    const params: unknown[] = [q.after ?? 0, q.limit];
    let filter = '';
    if (q.accounts?.length) {
      params.push([...q.accounts]);
      filter = ' AND account = ANY($3::text[])';
    }
    const r = await this.#pool.query<{ cursor: string; id: string; account: string; messageId: string; to: string; state: string; reason: string | null; at: string }>(
      `SELECT cursor, outbox_id AS id, account, message_id AS "messageId", recipient AS "to", state, reason, at
       FROM outbox_changes WHERE cursor > $1${filter} ORDER BY cursor LIMIT $2`,
      params,
    );
    return r.rows.map((row) => ({ ...row, cursor: Number(row.cursor), id: Number(row.id), at: Number(row.at) }));
  }

  /** Deletes changes recorded before `cutoff` (retention). */
  async prune(cutoff: number): Promise<number> {
    return (await this.#pool.query('DELETE FROM outbox_changes WHERE at < $1 AND cursor IS NOT NULL', [cutoff])).rowCount ?? 0;
  }
}
