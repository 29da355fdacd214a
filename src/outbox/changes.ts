// The journal of our own messages' state changes (migration 9 writes it by trigger, in the
// transaction of the change): queued or held at enqueue, then sent, delivered, read, failed,
// denied, expired, cancelled. Read by cursor, like the inbox.
import type { StateDb } from '../store/db.js';
import type { Awaitable } from './backend.js';
import { writeTx } from '../store/db.js';

/** One state change of an outbox row. */
export interface OutboxChange {
  cursor: number;
  /** The outbox row id (as in /v1/messages/ID). */
  id: number;
  account: string;
  messageId: string;
  to: string;
  state: string;
  reason: string | null;
  at: number;
}

/** What the route and retention need of the journal, whichever store keeps it. */
export interface OutboxChangesBackend {
  list(q: { after?: number; accounts?: readonly string[]; limit: number }): Awaitable<OutboxChange[]>;
  prune(cutoff: number): Awaitable<number>;
}

/** Reads and prunes the journal. */
export class OutboxChanges implements OutboxChangesBackend {
  readonly #db: StateDb;

  constructor(db: StateDb) {
    this.#db = db;
  }

  /** Changes after a cursor, oldest first. */
  list(q: { after?: number; accounts?: readonly string[]; limit: number }): OutboxChange[] {
    const accounts = q.accounts ?? [];
    const filter = accounts.length ? ` AND account IN (${accounts.map(() => '?').join(', ')})` : '';
    return this.#db
      .prepare<unknown[], OutboxChange>(
        `SELECT cursor, outbox_id AS id, account, message_id AS messageId, recipient AS "to", state, reason, at
         FROM outbox_changes WHERE cursor > ?${filter} ORDER BY cursor LIMIT ?`,
      )
      .all(q.after ?? 0, ...accounts, q.limit);
  }

  /** Deletes changes recorded before `cutoff` (retention). */
  prune(cutoff: number): number {
    return writeTx(this.#db, () => this.#db.prepare('DELETE FROM outbox_changes WHERE at < ?').run(cutoff).changes);
  }
}

/** A change as the API shows it. */
export function changeToJson(c: OutboxChange): Record<string, unknown> {
  return {
    cursor: String(c.cursor),
    id: c.id,
    account: c.account,
    messageId: c.messageId,
    to: c.to,
    state: c.state,
    ...(c.reason ? { reason: c.reason } : {}),
    at: new Date(c.at).toISOString(),
  };
}
