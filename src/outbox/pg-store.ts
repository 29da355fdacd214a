// The outbox in the shared PostgreSQL store (docs/cluster.md): the rows, states and guarded moves
// of the SQLite outbox (store.ts), for daemons that share accounts. Any daemon may insert a row for
// any account (its control API accepts the send; the owner drains it). Claiming a row to send is
// fenced by the account's lease, and takes the row FOR UPDATE SKIP LOCKED, so two drains never
// claim one row and a daemon that lost the account claims nothing.
//
// The daemon reaches it through ClusterOutbox (cluster-outbox.ts), which knows the fences this
// daemon holds; here every owner-only write takes its fence explicitly.
import type { Pool, PoolClient } from 'pg';
import { HttpError } from '../control/http-error.js';
import { fencedTx, type Fence } from '../cluster/lease-store.js';
import type { OutboundContent } from './content.js';
import { numberOrNull as num } from '../store/row-values.js';
import { withTx } from '../store/pg-tx.js';
import { FINAL_STATES, TRANSITION_COLUMNS, expiryReason, newRowValues, type AuditEntry, type CallerRole, type NewRow, type OutboxRow, type OutboxState, type TransitionPatch } from './store.js';

interface PgRow {
  id: string;
  account: string;
  recipient: string;
  chat_type: OutboxRow['chatType'];
  kind: OutboxRow['kind'];
  payload: string;
  message_id: string;
  state: OutboxState;
  reason: string | null;
  idempotency_key: string | null;
  request_id: string | null;
  client: string | null;
  client_role: OutboxRow['clientRole'];
  attempts: number;
  wire_sends: number;
  next_attempt_at: string;
  lease_until: string | null;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  sent_at: string | null;
  delivered_at: string | null;
  read_at: string | null;
  approved_by: string | null;
}

const COLUMNS = `id, account, recipient, chat_type, kind, payload, message_id, state, reason, idempotency_key, request_id, client, client_role,
  attempts, wire_sends, next_attempt_at, lease_until, created_at, updated_at, expires_at, sent_at, delivered_at, read_at, approved_by`;


function fromPg(r: PgRow | undefined): OutboxRow | null {
  if (!r) return null;
  const body = JSON.parse(r.payload) as { text: string; content?: OutboundContent };
  return {
    id: Number(r.id),
    account: r.account,
    to: r.recipient,
    chatType: r.chat_type,
    kind: r.kind,
    text: body.text,
    ...(body.content ? { content: body.content } : {}),
    messageId: r.message_id,
    state: r.state,
    reason: r.reason,
    idempotencyKey: r.idempotency_key,
    requestId: r.request_id,
    client: r.client,
    ...(r.client_role ? { clientRole: r.client_role } : {}),
    attempts: r.attempts,
    wireSends: r.wire_sends,
    nextAttemptAt: Number(r.next_attempt_at),
    leaseUntil: num(r.lease_until),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    expiresAt: num(r.expires_at),
    sentAt: num(r.sent_at),
    deliveredAt: num(r.delivered_at),
    readAt: num(r.read_at),
    approvedBy: r.approved_by,
  };
}

/** The next row an account may send, locked: due, first pending row to its peer, not being claimed by another transaction. */
const CLAIM_SQL = `SELECT o.id FROM outbox o WHERE o.account = $1 AND o.state IN ('queued', 'unknown') AND o.next_attempt_at <= $2
   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.account = o.account AND p.recipient = o.recipient AND p.id < o.id
                   AND p.state IN ('queued', 'sending', 'unknown'))
 ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED`;

export class PgOutboxStore {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /**
   * Stores many rows, each with its audit entry, in one transaction; each item has its own outcome
   * (a savepoint each). An idempotency key already used on the account answers the existing row
   * (created: false), also when another daemon inserted it a moment before.
   */
  async insertMany(items: Array<{ row: NewRow; audit: Omit<AuditEntry, 'outboxId'> }>, now = Date.now()): Promise<Array<{ row: OutboxRow; created: boolean } | { error: Error }>> {
    // In (account, idempotency key) order, the outcomes in the callers' order: batches with the same
    // keys take their index locks in one order, and do not deadlock each other.
    const key = (i: number) => `${items[i]!.row.account}\u0000${items[i]!.row.idempotencyKey ?? ''}`;
    const order = items.map((_, i) => i).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a - b));
    return withTx(this.#pool, async (c) => {
      const out: Array<{ row: OutboxRow; created: boolean } | { error: Error }> = new Array(items.length);
      for (const i of order) {
        const { row, audit } = items[i]!;
        await c.query('SAVEPOINT item');
        try {
          out[i] = await this.#insertOne(c, row, audit, now);
          await c.query('RELEASE SAVEPOINT item');
        } catch (err) {
          // A deadlock's victim is the whole transaction's to run again (withTx), not one item's error.
          if ((err as { code?: string }).code === '40P01') throw err;
          await c.query('ROLLBACK TO SAVEPOINT item');
          if ((err as { code?: string }).code === '23505' && row.idempotencyKey) {
            // Inserted by another transaction meanwhile: the key's row, as for any repeat.
            try {
              const existing = await this.#byKey(c, row);
              if (existing) {
                out[i] = existing;
                continue;
              }
            } catch (again) {
              out[i] = { error: again as Error };
              continue;
            }
          }
          out[i] = { error: err as Error };
        }
      }
      return out;
    });
  }

  async #byKey(c: PoolClient, row: NewRow): Promise<{ row: OutboxRow; created: false } | null> {
    const existing = fromPg((await c.query<PgRow>(`SELECT ${COLUMNS} FROM outbox WHERE account = $1 AND idempotency_key = $2`, [row.account, row.idempotencyKey])).rows[0]);
    if (!existing) return null;
    const clientOf = (r: Pick<OutboxRow, 'client' | 'clientRole'>) => (r.clientRole === 'client' ? r.client : null);
    if (clientOf(existing) !== clientOf(row)) {
      throw new HttpError(409, 'conflict', `idempotencyKey: already used on account ${row.account} by another caller; choose another key`);
    }
    return { row: existing, created: false };
  }

  async #insertOne(c: PoolClient, row: NewRow, audit: Omit<AuditEntry, 'outboxId'>, now: number): Promise<{ row: OutboxRow; created: boolean }> {
    if (row.idempotencyKey) {
      const existing = await this.#byKey(c, row);
      if (existing) return existing;
    }
    const r = await c.query<PgRow>(
      `INSERT INTO outbox (account, recipient, chat_type, kind, payload, message_id, state, reason, idempotency_key, request_id, client,
         client_role, created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       RETURNING ${COLUMNS}`,
      newRowValues(row, now),
    );
    const inserted = fromPg(r.rows[0])!;
    await insertAudit(c, { ...audit, outboxId: inserted.id });
    return { row: inserted, created: true };
  }

  /** One row by its id. */
  async get(id: number): Promise<OutboxRow | null> {
    return fromPg((await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM outbox WHERE id = $1`, [id])).rows[0]);
  }

  /** One row by its WhatsApp message id. */
  async getByMessageId(messageId: string): Promise<OutboxRow | null> {
    return fromPg((await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM outbox WHERE message_id = $1`, [messageId])).rows[0]);
  }

  /** A row of this account to a chat (any of its JIDs), by its WhatsApp id. */
  async findSent(account: string, chats: readonly string[], messageId: string): Promise<OutboxRow | null> {
    const r = await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM outbox WHERE account = $1 AND message_id = $2 AND recipient = ANY($3::text[])`, [account, messageId, [...chats]]);
    return fromPg(r.rows[0]);
  }

  /** What an account sent under a message id (a retry receipt asks for it again); null when never handed to a socket. */
  async sentMessage(account: string, messageId: string): Promise<{ text: string; content?: OutboundContent; wire: Uint8Array | null } | null> {
    const r = await this.#pool.query<{ payload: string; wire: Buffer | null }>(
      'SELECT payload, wire_message AS wire FROM outbox WHERE account = $1 AND message_id = $2 AND wire_sends > 0',
      [account, messageId],
    );
    const row = r.rows[0];
    if (!row) return null;
    const body = JSON.parse(row.payload) as { text: string; content?: OutboundContent };
    return { text: body.text, ...(body.content ? { content: body.content } : {}), wire: row.wire };
  }

  /** Rows, newest first, optionally filtered. */
  async list(filter: { account?: string; accounts?: readonly string[]; state?: OutboxState; limit?: number; beforeId?: number } = {}): Promise<OutboxRow[]> {
    const { where, args } = conditions([
      ['account = ?', filter.account || undefined],
      ['account = ANY(?::text[])', filter.accounts && [...filter.accounts]],
      ['state = ?', filter.state],
      ['id < ?', filter.beforeId || undefined],
    ]);
    args.push(filter.limit ?? 100);
    const r = await this.#pool.query<PgRow>(`SELECT ${COLUMNS} FROM outbox${where} ORDER BY id DESC LIMIT $${args.length}`, args);
    return r.rows.map((row) => fromPg(row)!);
  }

  /** Audit entries, newest first. */
  async audit(filter: { account?: string; accounts?: readonly string[]; client?: string; role?: CallerRole; limit?: number } = {}): Promise<AuditEntry[]> {
    const { where, args } = conditions([
      ['account = ?', filter.account || undefined],
      ['account = ANY(?::text[])', filter.accounts && [...filter.accounts]],
      ['client = ?', filter.client],
      ['client_role = ?', filter.role],
    ]);
    args.push(filter.limit ?? 100);
    const r = await this.#pool.query<Omit<AuditEntry, 'at' | 'outboxId'> & { at: string; outboxId: string | null }>(
      `SELECT at, account, recipient, kind, decision, rule, reason, stage, outbox_id AS "outboxId", client, client_role AS role, request_id AS "requestId"
         FROM audit${where} ORDER BY id DESC LIMIT $${args.length}`,
      args,
    );
    return r.rows.map(({ role, at, outboxId, ...e }) => ({ ...e, at: Number(at), outboxId: num(outboxId), ...(role ? { role } : {}) }));
  }

  /** How many of the account's rows are in a state, and the oldest one's created and updated times. */
  async stateAge(account: string, state: OutboxState): Promise<{ count: number; oldestCreatedAt: number | null; oldestUpdatedAt: number | null }> {
    const r = await this.#pool.query<{ count: string; c: string | null; u: string | null }>(
      'SELECT count(*) AS count, min(created_at) AS c, min(updated_at) AS u FROM outbox WHERE account = $1 AND state = $2',
      [account, state],
    );
    const row = r.rows[0]!;
    return { count: Number(row.count), oldestCreatedAt: num(row.c), oldestUpdatedAt: num(row.u) };
  }

  /** The sha256 of every media file a row still in the table refers to. */
  async referencedMedia(): Promise<Set<string>> {
    const r = await this.#pool.query<{ sha: string }>(
      "SELECT DISTINCT payload::jsonb #>> '{content,media,sha256}' AS sha FROM outbox WHERE payload::jsonb #>> '{content,media,sha256}' IS NOT NULL",
    );
    return new Set(r.rows.map((row) => row.sha));
  }

  /** The accounts with rows a drain could claim (queued or unknown), from the kept counts. */
  async accountsWithRowsToSend(): Promise<string[]> {
    const r = await this.#pool.query<{ account: string }>(
      `SELECT account FROM (${KEPT_COUNTS}) k WHERE state IN ('queued', 'unknown') GROUP BY account HAVING sum(n) > 0`,
    );
    return r.rows.map((row) => row.account);
  }

  /** True when the account has already had a message accepted by the server for this recipient. */
  async hasWrittenTo(account: string, recipient: string): Promise<boolean> {
    const r = await this.#pool.query("SELECT 1 FROM outbox WHERE account = $1 AND recipient = $2 AND state IN ('sent', 'delivered', 'read') LIMIT 1", [account, recipient]);
    return (r.rowCount ?? 0) > 0;
  }

  /** The earliest next_attempt_at among the account's waiting rows, or null. */
  async nextDueAt(account: string): Promise<number | null> {
    const r = await this.#pool.query<{ t: string | null }>("SELECT min(next_attempt_at) AS t FROM outbox WHERE account = $1 AND state IN ('queued', 'unknown')", [account]);
    return num(r.rows[0]!.t);
  }

  /**
   * Owner only: one more hand-off to the socket with the message as built, the lease started
   * again; false when the row is no longer `sending` (released meanwhile).
   */
  async noteWireSendOf(fence: Fence, id: number, wire: Uint8Array, leaseUntil: number, now = Date.now()): Promise<boolean> {
    const r = await fencedTx(this.#pool, fence.owner, fence.lease, (c) =>
      c.query(
        "UPDATE outbox SET wire_sends = wire_sends + 1, wire_message = $1, lease_until = $2, updated_at = $3 WHERE id = $4 AND account = $5 AND state = 'sending'",
        [Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength), leaseUntil, now, id, fence.lease.account],
      ),
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** Owner only: one more hand-off to the socket. */
  async noteWireSend(fence: Fence, id: number, now = Date.now()): Promise<void> {
    await fencedTx(this.#pool, fence.owner, fence.lease, (c) =>
      c.query('UPDATE outbox SET wire_sends = wire_sends + 1, updated_at = $1 WHERE id = $2 AND account = $3', [now, id, fence.lease.account]),
    );
  }

  /** Owner only: the account's unknown rows that reached the wire wait until `until` before a re-send. Returns them. */
  async deferUnknown(fence: Fence, until: number, now = Date.now()): Promise<OutboxRow[]> {
    const r = await fencedTx(this.#pool, fence.owner, fence.lease, (c) =>
      c.query<PgRow>(
        `UPDATE outbox SET next_attempt_at = GREATEST(next_attempt_at, $1),
                updated_at = CASE WHEN next_attempt_at >= $1 THEN updated_at ELSE $2 END
          WHERE account = $3 AND state = 'unknown' AND wire_sends > 0 RETURNING ${COLUMNS}`,
        [until, now, fence.lease.account],
      ),
    );
    return r.rows.map((row) => fromPg(row)!).sort((a, b) => a.id - b.id);
  }

  /** A policy decision about something that is not an outbox row (a read receipt). */
  async recordDecision(e: Omit<AuditEntry, 'outboxId'>): Promise<void> {
    await withTx(this.#pool, (c) => insertAudit(c, { ...e, outboxId: null }));
  }

  /** Like transition, plus an audit entry in the same transaction. */
  async transitionWithAudit(
    id: number,
    from: readonly OutboxState[],
    to: OutboxState,
    patch: TransitionPatch | undefined,
    audit: Omit<AuditEntry, 'outboxId'>,
    now = Date.now(),
    fence?: Fence,
  ): Promise<OutboxRow | null> {
    const run = async (c: PoolClient) => {
      const row = await this.#transitionOn(c, id, from, to, patch ?? {}, now, fence);
      if (row) await insertAudit(c, { ...audit, outboxId: id });
      return row;
    };
    return fence ? fencedTx(this.#pool, fence.owner, fence.lease, run) : withTx(this.#pool, run);
  }

  /**
   * Expires rows past their TTL that are not in flight (queued, held, unknown), whoever owns their
   * account: each move is guarded by the row's state. Returns them.
   */
  async expireDue(now: number): Promise<OutboxRow[]> {
    return withTx(this.#pool, async (c) => {
      const due = await c.query<PgRow>(
        `SELECT ${COLUMNS} FROM outbox WHERE state IN ('queued', 'held', 'unknown') AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY id FOR UPDATE SKIP LOCKED`,
        [now],
      );
      const out: OutboxRow[] = [];
      for (const raw of due.rows) {
        const r = fromPg(raw)!;
        const moved = await this.#transitionOn(c, r.id, ['queued', 'held', 'unknown'], 'expired', { reason: expiryReason(r) }, now);
        if (moved) out.push(moved);
      }
      return out;
    });
  }

  /** Tells the daemons listening on OUTBOX_CHANNEL that these accounts have rows to send (the owner's drain wakes). */
  async notifyQueued(accounts: readonly string[]): Promise<void> {
    if (accounts.length === 0) return;
    await this.#pool.query('SELECT pg_notify($1, a) FROM unnest($2::text[]) a', [OUTBOX_CHANNEL, [...new Set(accounts)]]);
  }

  /** Deletes rows in final states last changed before `before`; returns how many. */
  async prune(before: number, states: readonly OutboxState[] = FINAL_STATES): Promise<number> {
    const r = await this.#pool.query('DELETE FROM outbox WHERE state = ANY($1::text[]) AND updated_at < $2', [[...states], before]);
    return r.rowCount ?? 0;
  }

  /**
   * Claims the next row to send for the fenced account (see CLAIM_SQL): it becomes `sending` until
   * now + leaseMs. Throws FencedError when the lease is not held.
   */
  async claimNext(fence: Fence, now: number, leaseMs: number): Promise<OutboxRow | null> {
    return fencedTx(this.#pool, fence.owner, fence.lease, async (c) => {
      const next = (await c.query<{ id: string }>(CLAIM_SQL, [fence.lease.account, now])).rows[0];
      if (!next) return null;
      const r = await c.query<PgRow>(`UPDATE outbox SET state = 'sending', lease_until = $1, updated_at = $2 WHERE id = $3 RETURNING ${COLUMNS}`, [now + leaseMs, now, next.id]);
      return fromPg(r.rows[0]);
    });
  }

  /**
   * Moves a row to `to` only if it is in one of `from`; null when it was not (someone moved it
   * first). With a fence, only a row of the fenced account, and only while its lease is held.
   */
  async transition(id: number, from: readonly OutboxState[], to: OutboxState, patch: TransitionPatch = {}, now = Date.now(), fence?: Fence): Promise<OutboxRow | null> {
    const run = (c: Pool | PoolClient) => this.#transitionOn(c, id, from, to, patch, now, fence);
    return fence ? fencedTx(this.#pool, fence.owner, fence.lease, run) : run(this.#pool);
  }

  async #transitionOn(c: Pool | PoolClient, id: number, from: readonly OutboxState[], to: OutboxState, patch: TransitionPatch, now: number, fence?: Fence): Promise<OutboxRow | null> {
    const sets = ['state = $1', 'updated_at = $2'];
    const args: unknown[] = [to, now];
    for (const [k, v] of Object.entries(patch) as Array<[keyof TransitionPatch, unknown]>) {
      if (v === undefined) continue;
      args.push(v);
      sets.push(`${TRANSITION_COLUMNS[k]} = $${args.length}`);
    }
    args.push(id, [...from]);
    let where = `id = $${args.length - 1} AND state = ANY($${args.length}::text[])`;
    if (fence) {
      args.push(fence.lease.account);
      where += ` AND account = $${args.length}`;
    }
    const sql = `UPDATE outbox SET ${sets.join(', ')} WHERE ${where} RETURNING ${COLUMNS}`;
    return fromPg((await c.query<PgRow>(sql, args)).rows[0]);
  }

  /**
   * Puts the fenced account's `sending` rows back: those that reached the wire become `unknown`,
   * the others `queued`; with `onlyExpired`, only rows whose lease ran out (on the owner's clock,
   * which set it). Only the account's lease holder may: any other daemon doing it would have rows
   * in flight claimed and sent again.
   */
  async releaseSending(fence: Fence, now: number, onlyExpired = false): Promise<OutboxRow[]> {
    const r = await fencedTx(this.#pool, fence.owner, fence.lease, (c) =>
      c.query<PgRow>(
        `UPDATE outbox SET state = CASE WHEN wire_sends > 0 THEN 'unknown' ELSE 'queued' END, lease_until = NULL, updated_at = $1
          WHERE state = 'sending' AND account = $2 AND (NOT $3 OR lease_until < $1)
         RETURNING ${COLUMNS}`,
        [now, fence.lease.account, onlyExpired],
      ),
    );
    return r.rows.map((row) => fromPg(row)!).sort((a, b) => a.id - b.id);
  }

  /** Counts per account of the states given (default every state), from the kept counts and the deltas not folded yet. */
  async countsByAccount(states?: readonly OutboxState[]): Promise<Map<string, Partial<Record<OutboxState, number>>>> {
    const r = await this.#pool.query<{ account: string; state: OutboxState; n: string }>(
      `SELECT account, state, sum(n) AS n FROM (${KEPT_COUNTS}) k${states ? ' WHERE state = ANY($1::text[])' : ''} GROUP BY account, state HAVING sum(n) > 0`,
      states ? [[...states]] : [],
    );
    const out = new Map<string, Partial<Record<OutboxState, number>>>();
    for (const row of r.rows) {
      const m = out.get(row.account) ?? {};
      m[row.state] = Number(row.n);
      out.set(row.account, m);
    }
    return out;
  }

  /** Counts per state (of one account, or all), from the kept counts and the deltas not folded yet. */
  async countsByState(account?: string): Promise<Partial<Record<OutboxState, number>>> {
    const r = await this.#pool.query<{ state: OutboxState; n: string }>(
      `SELECT state, sum(n) AS n FROM (${KEPT_COUNTS}) k${account ? ' WHERE account = $1' : ''} GROUP BY state HAVING sum(n) > 0`,
      account ? [account] : [],
    );
    return Object.fromEntries(r.rows.map((row) => [row.state, Number(row.n)]));
  }

  /**
   * Adds the count deltas written so far into the kept counts (the daemon runs this every few
   * seconds; reads are right either way). One fold at a time: a second one meanwhile does nothing.
   * Deltas of transactions not committed yet stay for the next fold. Returns how many it folded.
   */
  async foldCounts(): Promise<number> {
    return withTx(this.#pool, async (c) => {
      const mine = (await c.query<{ mine: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS mine', [FOLD_LOCK])).rows[0]!.mine;
      if (!mine) return 0;
      const r = await c.query<{ n: string }>(
        `WITH moved AS (DELETE FROM outbox_count_deltas RETURNING state, account, d),
              sums AS (SELECT state, account, sum(d) AS d, count(*) AS rows FROM moved GROUP BY state, account),
              kept AS (INSERT INTO outbox_counts (state, account, n) SELECT state, account, d FROM sums
                       ON CONFLICT (state, account) DO UPDATE SET n = outbox_counts.n + EXCLUDED.n)
         SELECT coalesce(sum(rows), 0) AS n FROM sums`,
      );
      return Number(r.rows[0]!.n);
    });
  }
}

/**
 * A WHERE clause (" WHERE …", or "") of the conditions whose value is given, each "?" numbered as
 * a PostgreSQL parameter, and the parameters.
 */
function conditions(parts: Array<[sql: string, value: unknown]>): { where: string; args: unknown[] } {
  const args: unknown[] = [];
  const where: string[] = [];
  for (const [sql, value] of parts) {
    if (value === undefined) continue;
    args.push(value);
    where.push(sql.replace('?', `$${args.length}`));
  }
  return { where: where.length ? ` WHERE ${where.join(' AND ')}` : '', args };
}

/** The NOTIFY channel on which an account with new rows to send is named. */
export const OUTBOX_CHANNEL = 'wa_outbox';

/** The kept counts and the deltas not folded into them yet, as (account, state, n) rows. */
const KEPT_COUNTS = 'SELECT account, state, n FROM outbox_counts UNION ALL SELECT account, state, d AS n FROM outbox_count_deltas';
/** The advisory-lock key of the counts fold ("wacf"). */
const FOLD_LOCK = 0x77616366;

async function insertAudit(c: PoolClient, e: AuditEntry): Promise<void> {
  await c.query(
    'INSERT INTO audit (at, account, recipient, kind, decision, rule, reason, stage, outbox_id, client, client_role, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
    [e.at, e.account, e.recipient, e.kind, e.decision, e.rule, e.reason, e.stage, e.outboxId, e.client, e.role ?? null, e.requestId],
  );
}
