// The outbox table: every outbound message as a row, written before anyone is told it was
// accepted. State changes are guarded updates ("only from these states"), so two paths racing on
// one row (an ack and a lease expiry, say) cannot both win. See docs/outbox.md for the states.
import { HttpError } from '../control/http-error.js';
import type { StateDb } from '../store/db.js';
import { writeTx } from '../store/db.js';
import type { SendKind } from '../policy/policy.js';
import type { OutboundContent } from './content.js';
import type { OutboxBackend } from './backend.js';

/** Row states. */
export type OutboxState =
  | 'queued'
  | 'sending'
  | 'unknown'
  | 'sent'
  | 'delivered'
  | 'read'
  | 'held'
  | 'denied'
  | 'failed'
  | 'expired'
  | 'cancelled';

/** States a row never leaves by itself. */
export const FINAL_STATES: readonly OutboxState[] = ['sent', 'delivered', 'read', 'denied', 'failed', 'expired', 'cancelled'];
/** States in which a row still holds its place in its peer's order. */
export const ACTIVE_STATES: readonly OutboxState[] = ['queued', 'sending', 'unknown'];

/** One outbound message. */
export interface OutboxRow {
  id: number;
  account: string;
  /** Normalised recipient JID. */
  to: string;
  chatType: 'direct' | 'group';
  kind: SendKind;
  /** The text, or what a row of another kind shows as text (caption, emoji, edited text; '' for none). */
  text: string;
  /** What the row sends beyond plain text (media, reply, location, contact, reaction, edit, delete); absent for plain text. */
  content?: OutboundContent;
  /** The WhatsApp message id, fixed at enqueue. */
  messageId: string;
  state: OutboxState;
  reason: string | null;
  idempotencyKey: string | null;
  requestId: string | null;
  client: string | null;
  /** `client` when an authenticated client enqueued the row, `operator` when an operator did (null before roles). */
  clientRole?: CallerRole | null;
  /** Send errors so far (waiting for a socket never counts). */
  attempts: number;
  /** Times the message was handed to the socket (more than 1 means a replay with the same id). */
  wireSends: number;
  nextAttemptAt: number;
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  sentAt: number | null;
  deliveredAt: number | null;
  readAt: number | null;
  /** Who approved a held row (client and request id); a hold rule does not stop it again. */
  approvedBy: string | null;
}

/** A row as the API shows it (times as ISO strings). */
export function rowToJson(r: OutboxRow): Record<string, unknown> {
  const iso = (t: number | null) => (t ? new Date(t).toISOString() : null);
  return {
    id: r.id,
    account: r.account,
    to: r.to,
    chatType: r.chatType,
    kind: r.kind,
    text: r.text,
    ...(r.content ? { content: r.content } : {}),
    messageId: r.messageId,
    state: r.state,
    ...(r.reason ? { reason: r.reason } : {}),
    idempotencyKey: r.idempotencyKey,
    requestId: r.requestId,
    client: r.client,
    ...(r.clientRole ? { clientRole: r.clientRole } : {}),
    attempts: r.attempts,
    wireSends: r.wireSends,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
    expiresAt: iso(r.expiresAt),
    sentAt: iso(r.sentAt),
    deliveredAt: iso(r.deliveredAt),
    readAt: iso(r.readAt),
    ...(r.approvedBy ? { approvedBy: r.approvedBy } : {}),
  };
}

/** What enqueue stores: the row's own fields, in one of the states a new row can have. */
export type NewRow = Pick<OutboxRow, 'account' | 'to' | 'chatType' | 'kind' | 'text' | 'content' | 'messageId' | 'reason' | 'idempotencyKey' | 'requestId' | 'client' | 'clientRole' | 'expiresAt'> & {
  state: 'queued' | 'held' | 'denied';
};

/** What a transition may change besides the state. */
export type TransitionPatch = Partial<Pick<OutboxRow, 'reason' | 'attempts' | 'nextAttemptAt' | 'leaseUntil' | 'sentAt' | 'deliveredAt' | 'readAt' | 'wireSends' | 'expiresAt' | 'approvedBy'>>;

/** The column of each field a transition may change (both stores). */
export const TRANSITION_COLUMNS: Record<keyof TransitionPatch, string> = {
  reason: 'reason',
  attempts: 'attempts',
  nextAttemptAt: 'next_attempt_at',
  leaseUntil: 'lease_until',
  sentAt: 'sent_at',
  deliveredAt: 'delivered_at',
  readAt: 'read_at',
  wireSends: 'wire_sends',
  expiresAt: 'expires_at',
  approvedBy: 'approved_by',
};

/**
 * A new row's values in the order both stores insert them: account, recipient, chat_type, kind,
 * payload, message_id, state, reason, idempotency_key, request_id, client, client_role,
 * created_at, updated_at, expires_at.
 */
export function newRowValues(row: NewRow, now: number): unknown[] {
  const payload: Payload = { text: row.text, ...(row.content ? { content: row.content } : {}) };
  return [row.account, row.to, row.chatType, row.kind, JSON.stringify(payload), row.messageId, row.state, row.reason, row.idempotencyKey, row.requestId, row.client, row.clientRole ?? null, now, now, row.expiresAt];
}

/** One policy decision for the audit table. */
export interface AuditEntry {
  at: number;
  account: string;
  recipient: string;
  kind: string;
  decision: 'allow' | 'deny' | 'hold' | 'approve' | 'reject';
  rule: string;
  reason: string;
  /** `enqueue`, `send` (the check just before sending) or `operator`. */
  stage: 'enqueue' | 'send' | 'operator';
  outboxId: number | null;
  client: string | null;
  /** The role `client` acted in: an authenticated client, or an operator naming itself (null before roles). */
  role?: CallerRole | null;
  requestId: string | null;
}

/** Who a request came from, as far as rows and the audit record it. */
export type CallerRole = 'operator' | 'client';

/** Why a row expired: one that never reached the wire was simply not sent; one that did may have been seen. */
export function expiryReason(r: Pick<OutboxRow, 'wireSends'>): string {
  if (r.wireSends === 0) return 'not sent before its TTL';
  return `not confirmed before its TTL: handed to the socket ${r.wireSends === 1 ? 'once' : `${r.wireSends} times`} with no server ack or receipt, so it may have reached the peer; not sent again`;
}

const SELECT = `SELECT id, account, recipient AS "to", chat_type AS chatType, kind, payload, message_id AS messageId, state, reason,
  idempotency_key AS idempotencyKey, request_id AS requestId, client, client_role AS clientRole, attempts, wire_sends AS wireSends,
  next_attempt_at AS nextAttemptAt, lease_until AS leaseUntil, created_at AS createdAt, updated_at AS updatedAt,
  expires_at AS expiresAt, sent_at AS sentAt, delivered_at AS deliveredAt, read_at AS readAt, approved_by AS approvedBy FROM outbox`;

/**
 * The next row an account may send: due, and no earlier row to the same peer still pending (per-peer
 * order). The NOT EXISTS runs on outbox_pending_by_peer, which holds pending rows only, so its cost
 * does not grow with how much has been sent to the peer (migration 6).
 */
export const CLAIM_NEXT_SQL = `${SELECT} o WHERE o.account = ? AND o.state IN ('queued', 'unknown') AND o.next_attempt_at <= ?
   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.account = o.account AND p.recipient = o.recipient AND p.id < o.id
                   AND p.state IN ('queued', 'sending', 'unknown'))
 ORDER BY o.id LIMIT 1`;

type RawRow = Omit<OutboxRow, 'text' | 'content'> & { payload: string };
/** The payload column: the text, and the content object of rows that send more than plain text. */
interface Payload {
  text: string;
  content?: OutboundContent;
}

function fromRaw(r: RawRow | undefined): OutboxRow | null {
  if (!r) return null;
  const { payload, clientRole, ...rest } = r;
  // No role (a row from before roles, or the daemon's own): the field is left out.
  const body = JSON.parse(payload) as Payload;
  return { ...rest, ...(clientRole ? { clientRole } : {}), text: body.text, ...(body.content ? { content: body.content } : {}) };
}

/** The outbox table. All methods are synchronous (better-sqlite3); writes are IMMEDIATE transactions. */
export class OutboxStore implements OutboxBackend {
  readonly #db: StateDb;

  constructor(db: StateDb) {
    this.#db = db;
  }

  /**
   * Stores many rows, each with its audit entry, in one transaction (group commit: one fsync for
   * all). Each item gets its own outcome; an item that fails (say, a constraint) does not take the
   * others down with it. With an idempotency key already used on the account, an item returns the
   * existing row instead (created: false).
   */
  insertMany(items: Array<{ row: NewRow; audit: Omit<AuditEntry, 'outboxId'> }>, now = Date.now()): Array<{ row: OutboxRow; created: boolean } | { error: Error }> {
    return writeTx(this.#db, () =>
      items.map(({ row, audit }) => {
        try {
          return this.#db.transaction(() => this.#insertOne(row, audit, now))(); // a savepoint per item
        } catch (err) {
          return { error: err as Error };
        }
      }),
    );
  }

  #insertOne(row: NewRow, audit: Omit<AuditEntry, 'outboxId'>, now: number): { row: OutboxRow; created: boolean } {
    {
      if (row.idempotencyKey) {
        const existing = fromRaw(
          this.#db.prepare(`${SELECT} WHERE account = ? AND idempotency_key = ?`).get(row.account, row.idempotencyKey) as RawRow | undefined,
        );
        if (existing) {
          // A key names one caller's message: a client never gets another caller's row (or has
          // its own swallowed) by sending the same key. Operators share keys among themselves.
          const clientOf = (r: Pick<OutboxRow, 'client' | 'clientRole'>) => (r.clientRole === 'client' ? r.client : null);
          if (clientOf(existing) !== clientOf(row)) {
            throw new HttpError(409, 'conflict', `idempotencyKey: already used on account ${row.account} by another caller; choose another key`);
          }
          return { row: existing, created: false };
        }
      }
      const info = this.#db
        .prepare(
          `INSERT INTO outbox (account, recipient, chat_type, kind, payload, message_id, state, reason, idempotency_key, request_id, client,
             client_role, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(...newRowValues(row, now));
      const id = Number(info.lastInsertRowid);
      this.#insertAudit({ ...audit, outboxId: id });
      return { row: this.get(id)!, created: true };
    }
  }

  /** One row by its id. */
  get(id: number): OutboxRow | null {
    return fromRaw(this.#db.prepare(`${SELECT} WHERE id = ?`).get(id) as RawRow | undefined);
  }

  /**
   * What an account sent under a WhatsApp message id (what a retry receipt asks for again): the
   * text, and the message as built for its last wire send when one was kept; null when the
   * account never handed such a message to the socket.
   */
  sentMessage(account: string, messageId: string): { text: string; content?: OutboundContent; wire: Uint8Array | null } | null {
    const row = this.#db.prepare('SELECT payload, wire_message AS wire FROM outbox WHERE account = ? AND message_id = ? AND wire_sends > 0').get(account, messageId) as
      | { payload: string; wire: Buffer | null }
      | undefined;
    if (!row) return null;
    const body = JSON.parse(row.payload) as Payload;
    return { text: body.text, ...(body.content ? { content: body.content } : {}), wire: row.wire };
  }

  /**
   * Records one more hand-off to the socket together with the message as built for it (media
   * uploaded), in one commit, just before its stanza is written: a crash then leaves the trace,
   * and a retry receipt re-sends exactly this message. The lease starts again (the wait for the
   * server's ack). False when the row is no longer `sending` (released meanwhile): not sent.
   */
  noteWireSendOf(id: number, wire: Uint8Array, leaseUntil: number, now = Date.now()): boolean {
    return writeTx(this.#db, () => {
      const changed = this.#db
        .prepare("UPDATE outbox SET wire_sends = wire_sends + 1, wire_message = ?, lease_until = ?, updated_at = ? WHERE id = ? AND state = 'sending'")
        .run(Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength), leaseUntil, now, id).changes;
      return changed > 0;
    });
  }

  /** The sha256 of every media file a row still in the table refers to (the media store keeps those). */
  referencedMedia(): Set<string> {
    const rows = this.#db.prepare("SELECT DISTINCT json_extract(payload, '$.content.media.sha256') AS sha FROM outbox WHERE json_extract(payload, '$.content.media.sha256') IS NOT NULL").all() as Array<{ sha: string }>;
    return new Set(rows.map((r) => r.sha));
  }

  /** A row of this account to a chat (any of its JIDs), by its WhatsApp id (what a reply, reaction, edit or delete points at). */
  findSent(account: string, chats: readonly string[], messageId: string): OutboxRow | null {
    const marks = chats.map(() => '?').join(', ') || 'NULL';
    return fromRaw(this.#db.prepare(`${SELECT} WHERE account = ? AND message_id = ? AND recipient IN (${marks})`).get(account, messageId, ...chats) as RawRow | undefined);
  }

  /** One row by its WhatsApp message id. */
  getByMessageId(messageId: string): OutboxRow | null {
    return fromRaw(this.#db.prepare(`${SELECT} WHERE message_id = ?`).get(messageId) as RawRow | undefined);
  }

  /** Rows, newest first, optionally filtered. */
  list(filter: { account?: string; accounts?: readonly string[]; state?: OutboxState; limit?: number; beforeId?: number } = {}): OutboxRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.account) (where.push('account = ?'), args.push(filter.account));
    if (filter.accounts) (where.push(`account IN (${filter.accounts.map(() => '?').join(', ') || 'NULL'})`), args.push(...filter.accounts));
    if (filter.state) (where.push('state = ?'), args.push(filter.state));
    if (filter.beforeId) (where.push('id < ?'), args.push(filter.beforeId));
    const sql = `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, filter.limit ?? 100) as RawRow[]).map((r) => fromRaw(r)!);
  }

  /** How many of the account's rows are in a state, and the oldest one's created and updated times. */
  stateAge(account: string, state: OutboxState): { count: number; oldestCreatedAt: number | null; oldestUpdatedAt: number | null } {
    const r = this.#db
      .prepare('SELECT count(*) AS count, min(created_at) AS oldestCreatedAt, min(updated_at) AS oldestUpdatedAt FROM outbox WHERE account = ? AND state = ?')
      .get(account, state) as { count: number; oldestCreatedAt: number | null; oldestUpdatedAt: number | null };
    return r;
  }

  /**
   * Counts per account of the states given (default: every state), in one query (for the status
   * of many accounts).
   */
  countsByAccount(states?: readonly OutboxState[]): Map<string, Partial<Record<OutboxState, number>>> {
    const out = new Map<string, Partial<Record<OutboxState, number>>>();
    const where = states ? ` AND state IN (${states.map(() => '?').join(', ')})` : '';
    // The kept counts (migration 18), not the rows: this is read at every status.
    const rows = this.#db.prepare(`SELECT account, state, n FROM outbox_counts WHERE n > 0${where}`).all(...(states ?? [])) as Array<{ account: string; state: OutboxState; n: number }>;
    for (const r of rows) {
      const m = out.get(r.account) ?? {};
      m[r.state] = r.n;
      out.set(r.account, m);
    }
    return out;
  }

  /** The accounts with rows a drain could claim (queued or unknown), from the kept counts. */
  accountsWithRowsToSend(): string[] {
    const rows = this.#db.prepare("SELECT DISTINCT account FROM outbox_counts WHERE state IN ('queued', 'unknown') AND n > 0").all() as Array<{ account: string }>;
    return rows.map((r) => r.account);
  }

  /** Counts per state (for status, metrics and digests), from the kept counts. */
  countsByState(account?: string): Partial<Record<OutboxState, number>> {
    const rows = (
      account
        ? this.#db.prepare('SELECT state, n FROM outbox_counts WHERE account = ? AND n > 0').all(account)
        : this.#db.prepare('SELECT state, sum(n) AS n FROM outbox_counts GROUP BY state HAVING sum(n) > 0').all()
    ) as Array<{ state: OutboxState; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /**
   * Claims the next row to send for the account: a queued (or unknown, to re-send) row that is
   * due and first in its peer's order. The claim is a lease: the row is `sending` until leaseUntil.
   */
  claimNext(account: string, now: number, leaseMs: number): OutboxRow | null {
    return writeTx(this.#db, () => {
      const row = this.#db.prepare(CLAIM_NEXT_SQL).get(account, now) as RawRow | undefined;
      if (!row) return null;
      this.#db.prepare("UPDATE outbox SET state = 'sending', lease_until = ?, updated_at = ? WHERE id = ?").run(now + leaseMs, now, row.id);
      return this.get(row.id);
    });
  }

  /** The earliest future next_attempt_at among the account's waiting rows, or null. */
  nextDueAt(account: string): number | null {
    const r = this.#db
      .prepare("SELECT min(next_attempt_at) AS t FROM outbox WHERE account = ? AND state IN ('queued', 'unknown')")
      .get(account) as { t: number | null };
    return r.t;
  }

  /**
   * Moves a row to `to` only if it is in one of `from`; returns the updated row, or null when the
   * row was not in one of those states (someone else moved it first).
   */
  transition(
    id: number,
    from: readonly OutboxState[],
    to: OutboxState,
    patch: TransitionPatch = {},
    now = Date.now(),
  ): OutboxRow | null {
    return writeTx(this.#db, () => this.#transition(id, from, to, patch, now));
  }

  /** A policy decision about something that is not an outbox row (a read receipt), in its own commit. */
  recordDecision(e: Omit<AuditEntry, 'outboxId'>): void {
    writeTx(this.#db, () => this.#insertAudit({ ...e, outboxId: null }));
  }

  /** Like transition, plus an audit entry in the same transaction. */
  transitionWithAudit(id: number, from: readonly OutboxState[], to: OutboxState, patch: Parameters<OutboxStore['transition']>[3], audit: Omit<AuditEntry, 'outboxId'>, now = Date.now()): OutboxRow | null {
    return writeTx(this.#db, () => {
      const row = this.#transition(id, from, to, patch ?? {}, now);
      if (row) this.#insertAudit({ ...audit, outboxId: id });
      return row;
    });
  }

  /**
   * Records one more hand-off to the socket, before the send call, so a crash mid-send leaves a
   * trace. The gate takes it back (a transition with the previous `wireSends`) when the send
   * fails before anything was written.
   */
  noteWireSend(id: number, now = Date.now()): void {
    writeTx(this.#db, () => {
      this.#db.prepare('UPDATE outbox SET wire_sends = wire_sends + 1, updated_at = ? WHERE id = ?').run(now, id);
    });
  }

  /**
   * Puts the account's `sending` rows back after their socket went away: rows that reached the
   * wire become `unknown` (settled by ack, or re-sent with the same id), the others `queued`.
   * With `onlyExpired`, only rows whose lease has run out. Returns the rows moved.
   */
  releaseSending(account: string | null, now: number, onlyExpired = false): OutboxRow[] {
    return writeTx(this.#db, () => {
      const where = [`state = 'sending'`];
      const args: unknown[] = [];
      if (account) (where.push('account = ?'), args.push(account));
      if (onlyExpired) (where.push('lease_until < ?'), args.push(now));
      const rows = (this.#db.prepare(`${SELECT} WHERE ${where.join(' AND ')}`).all(...args) as RawRow[]).map((r) => fromRaw(r)!);
      const out: OutboxRow[] = [];
      for (const r of rows) {
        const to: OutboxState = r.wireSends > 0 ? 'unknown' : 'queued';
        const moved = this.#transition(r.id, ['sending'], to, { leaseUntil: null }, now);
        if (moved) out.push(moved);
      }
      return out;
    });
  }

  /**
   * Expires rows past their TTL that are not in flight: queued and held rows, and unknown rows
   * (which may have reached the peer: they are not sent again, and their reason says so; a late
   * ack or receipt still settles them). Returns them.
   */
  expireDue(now: number): OutboxRow[] {
    return writeTx(this.#db, () => {
      const rows = (
        this.#db.prepare(`${SELECT} WHERE state IN ('queued', 'held', 'unknown') AND expires_at IS NOT NULL AND expires_at <= ?`).all(now) as RawRow[]
      ).map((r) => fromRaw(r)!);
      return rows
        .map((r) => this.#transition(r.id, ['queued', 'held', 'unknown'], 'expired', { reason: expiryReason(r) }, now))
        .filter((r): r is OutboxRow => r !== null);
    });
  }

  /**
   * Gives the account's unknown rows that reached the wire a settle window: none of them is
   * claimed (re-sent) before `until`, so an ack, receipt or echo of its id can settle it first.
   * Returns the rows given the window.
   */
  deferUnknown(account: string, until: number, now = Date.now()): OutboxRow[] {
    return writeTx(this.#db, () => {
      const rows = (this.#db.prepare(`${SELECT} WHERE account = ? AND state = 'unknown' AND wire_sends > 0`).all(account) as RawRow[]).map((r) => fromRaw(r)!);
      const out: OutboxRow[] = [];
      for (const r of rows) {
        if (r.nextAttemptAt >= until) {
          out.push(r);
          continue;
        }
        const moved = this.#transition(r.id, ['unknown'], 'unknown', { nextAttemptAt: until }, now);
        if (moved) out.push(moved);
      }
      return out;
    });
  }

  /** Deletes rows in final states last changed before `before`; returns how many. */
  prune(before: number, states: readonly OutboxState[] = FINAL_STATES): number {
    return writeTx(this.#db, () => {
      const marks = states.map(() => '?').join(', ');
      return this.#db.prepare(`DELETE FROM outbox WHERE state IN (${marks}) AND updated_at < ?`).run(...states, before).changes;
    });
  }

  /** True when the account has already had a message accepted by the server for this recipient. */
  hasWrittenTo(account: string, recipient: string): boolean {
    return (
      this.#db
        .prepare("SELECT 1 FROM outbox WHERE account = ? AND recipient = ? AND state IN ('sent', 'delivered', 'read') LIMIT 1")
        .get(account, recipient) !== undefined
    );
  }

  /** Audit entries, newest first. */
  audit(filter: { account?: string; accounts?: readonly string[]; client?: string; role?: CallerRole; limit?: number } = {}): AuditEntry[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.account) (where.push('account = ?'), args.push(filter.account));
    if (filter.accounts) (where.push(`account IN (${filter.accounts.map(() => '?').join(', ') || 'NULL'})`), args.push(...filter.accounts));
    if (filter.client !== undefined) (where.push('client = ?'), args.push(filter.client));
    if (filter.role !== undefined) (where.push('client_role = ?'), args.push(filter.role));
    const sql = `SELECT at, account, recipient, kind, decision, rule, reason, stage, outbox_id AS outboxId, client, client_role AS role, request_id AS requestId
      FROM audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...args, filter.limit ?? 100) as AuditEntry[];
    return rows.map(({ role, ...e }) => (role ? { ...e, role } : e));
  }

  #transition(id: number, from: readonly OutboxState[], to: OutboxState, patch: Record<string, unknown>, now: number): OutboxRow | null {
    const sets = ['state = ?', 'updated_at = ?'];
    const args: unknown[] = [to, now];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${TRANSITION_COLUMNS[k as keyof TransitionPatch]} = ?`);
      args.push(v);
    }
    const marks = from.map(() => '?').join(', ');
    const changed = this.#db.prepare(`UPDATE outbox SET ${sets.join(', ')} WHERE id = ? AND state IN (${marks})`).run(...args, id, ...from).changes;
    return changed ? this.get(id) : null;
  }

  #insertAudit(e: AuditEntry): void {
    this.#db
      .prepare(
        'INSERT INTO audit (at, account, recipient, kind, decision, rule, reason, stage, outbox_id, client, client_role, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(e.at, e.account, e.recipient, e.kind, e.decision, e.rule, e.reason, e.stage, e.outboxId, e.client, e.role ?? null, e.requestId);
  }
}
