// Named readers of the inbox, each with a committed cursor in the state database: everything at
// or below it is acknowledged and never handed to that consumer again. Consumers come from the
// config (origin `config`, kept in step with it) or from the API (origin `api`, kept until removed).
import type { StateDb } from '../store/db.js';
import { writeTx } from '../store/db.js';
import type { Awaitable } from '../outbox/backend.js';
import { numberOrNull as num } from '../store/row-values.js';

/** How a consumer reads: an NDJSON stream it acknowledges, or webhook POSTs the daemon makes. */
export type ConsumerType = 'stream' | 'webhook';

/** What defines a consumer. */
export interface ConsumerSpec {
  name: string;
  type: ConsumerType;
  /** Only these accounts' messages; absent = every account. */
  accounts?: string[] | undefined;
  /** Webhook only: where to POST, and the HMAC key. */
  url?: string | undefined;
  secret?: string | undefined;
}

/** A consumer and its progress. */
export interface ConsumerRow extends ConsumerSpec {
  origin: 'config' | 'api';
  /** Every readable message at or below this cursor is acknowledged. */
  cursor: number;
  createdAt: number;
  ackedAt: number | null;
  /** Webhook: failed deliveries of the message after the cursor, and when the next try is due. */
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

/** A message a webhook consumer gave up on. */
export interface DeadLetter {
  consumer: string;
  cursor: number;
  reason: string;
  at: number;
}

/** A consumer row as either store reads it (PostgreSQL answers bigints as strings). */
export interface StoredConsumerRow {
  name: string;
  type: string;
  accounts: string | null;
  url: string | null;
  secret: string | null;
  origin: string;
  cursor: number | string;
  created_at: number | string;
  acked_at: number | string | null;
  attempts: number;
  next_attempt_at: number | string | null;
  last_error: string | null;
  last_error_at: number | string | null;
}
type DbRow = StoredConsumerRow;

/** A stored consumer as both stores answer it. */
export function consumerRowFrom(r: StoredConsumerRow): ConsumerRow {
  return {
    name: r.name,
    type: r.type as ConsumerType,
    ...(r.accounts ? { accounts: JSON.parse(r.accounts) as string[] } : {}),
    ...(r.url ? { url: r.url } : {}),
    ...(r.secret ? { secret: r.secret } : {}),
    origin: r.origin as ConsumerRow['origin'],
    cursor: Number(r.cursor),
    createdAt: Number(r.created_at),
    ackedAt: num(r.acked_at),
    attempts: r.attempts,
    nextAttemptAt: num(r.next_attempt_at),
    lastError: r.last_error,
    lastErrorAt: num(r.last_error_at),
  };
}
const fromDb = consumerRowFrom;

/** Which consumer a row was: a reload changes its type and accounts in place, a remove and add its creation. */
export type ConsumerIdentity = Pick<ConsumerRow, 'createdAt' | 'type' | 'accounts'>;

/** The stored form of a consumer's accounts: what add and reload write, and what a row read back gives again. */
export function accountsColumn(accounts: readonly string[] | undefined): string | null {
  return accounts ? JSON.stringify(accounts) : null;
}

/** The readable statuses a consumer is given (never `ignored`). */
export const CONSUMED_STATUSES = ['ok', 'undecryptable'] as const;

/** Reads and writes consumers and their dead letters. */
/** What the consumer service needs of a store: SQLite answers at once, PostgreSQL (pg-consumers.ts) with a promise. */
export interface ConsumerBackend {
  get(name: string): Awaitable<ConsumerRow | null>;
  list(): Awaitable<ConsumerRow[]>;
  syncConfig(specs: readonly ConsumerSpec[]): Awaitable<{ added: string[]; removed: string[] }>;
  add(spec: ConsumerSpec): Awaitable<boolean>;
  remove(name: string): Awaitable<boolean>;
  /** `as`: only while the consumer is still this one (same creation, same accounts); null otherwise. */
  ack(name: string, cursor: number, as?: ConsumerIdentity): Awaitable<number | null>;
  recordFailure(name: string, error: string, nextAttemptAt: number): Awaitable<void>;
  deadLetter(name: string, cursor: number, reason: string): Awaitable<void>;
  deadLetters(name: string): Awaitable<DeadLetter[]>;
  deadLetterCount(name: string): Awaitable<number>;
  lag(c: Pick<ConsumerRow, 'cursor' | 'accounts'>): Awaitable<{ unacknowledged: number; oldestReceivedAt: number | null }>;
}

export class ConsumerStore implements ConsumerBackend {
  readonly #db: StateDb;
  readonly #now: () => number;

  constructor(db: StateDb, opts: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
  }

  /** One consumer, or null. */
  get(name: string): ConsumerRow | null {
    const r = this.#db.prepare<[string], DbRow>('SELECT * FROM inbox_consumers WHERE name = ?').get(name);
    return r ? fromDb(r) : null;
  }

  /** Every consumer, by name. */
  list(): ConsumerRow[] {
    return this.#db.prepare<[], DbRow>('SELECT * FROM inbox_consumers ORDER BY name').all().map(fromDb);
  }

  /**
   * Makes the config consumers what the config says (one commit): new ones start at cursor 0
   * (every stored message), changed ones keep their cursor, ones no longer listed are removed.
   * An API consumer of the same name becomes a config consumer, keeping its cursor.
   */
  syncConfig(specs: readonly ConsumerSpec[]): { added: string[]; removed: string[] } {
    return writeTx(this.#db, () => {
      const existing = new Map(this.list().map((c) => [c.name, c]));
      const wanted = new Set(specs.map((s) => s.name));
      const added: string[] = [];
      const removed: string[] = [];
      for (const spec of specs) {
        if (existing.has(spec.name)) {
          this.#db
            .prepare("UPDATE inbox_consumers SET type = ?, accounts = ?, url = ?, secret = ?, origin = 'config' WHERE name = ?")
            .run(spec.type, accountsColumn(spec.accounts), spec.url ?? null, spec.secret ?? null, spec.name);
        } else {
          this.#insert(spec, 'config');
          added.push(spec.name);
        }
      }
      for (const c of existing.values()) {
        if (c.origin === 'config' && !wanted.has(c.name)) {
          this.#delete(c.name);
          removed.push(c.name);
        }
      }
      return { added, removed };
    });
  }

  /** Adds an API consumer; false when the name is taken. */
  add(spec: ConsumerSpec): boolean {
    return writeTx(this.#db, () => {
      if (this.get(spec.name)) return false;
      this.#insert(spec, 'api');
      return true;
    });
  }

  /** Removes a consumer and its dead letters; false when there was none. */
  remove(name: string): boolean {
    return writeTx(this.#db, () => this.#delete(name));
  }

  /**
   * Commits `cursor` as acknowledged (never moving back) and clears any retry state. Returns the
   * committed cursor, or null for an unknown consumer (or, with `as`, one that has changed).
   */
  ack(name: string, cursor: number, as?: ConsumerIdentity): number | null {
    return writeTx(this.#db, () => {
      const now = this.#now();
      const same = as ? ' AND created_at = ? AND type = ? AND accounts IS ?' : '';
      const r = this.#db
        .prepare<unknown[], { cursor: number }>(
          `UPDATE inbox_consumers SET cursor = max(cursor, ?), acked_at = ?, attempts = 0, next_attempt_at = NULL
           WHERE name = ?${same} RETURNING cursor`,
        )
        .get(cursor, now, name, ...(as ? [as.createdAt, as.type, accountsColumn(as.accounts)] : []));
      return r ? r.cursor : null;
    });
  }

  /** Records a failed webhook delivery and when to try again. */
  recordFailure(name: string, error: string, nextAttemptAt: number): void {
    writeTx(this.#db, () => {
      this.#db
        .prepare('UPDATE inbox_consumers SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, last_error_at = ? WHERE name = ?')
        .run(nextAttemptAt, error, this.#now(), name);
    });
  }

  /** Gives up on one message for a consumer: lists it as dead and moves the cursor past it (one commit). */
  deadLetter(name: string, cursor: number, reason: string): void {
    writeTx(this.#db, () => {
      this.#db.prepare('INSERT OR REPLACE INTO inbox_dead_letters (consumer, cursor, reason, at) VALUES (?, ?, ?, ?)').run(name, cursor, reason, this.#now());
      this.#db.prepare('UPDATE inbox_consumers SET cursor = max(cursor, ?), attempts = 0, next_attempt_at = NULL WHERE name = ?').run(cursor, name);
    });
  }

  /** A consumer's dead letters, oldest first. */
  deadLetters(name: string): DeadLetter[] {
    return this.#db.prepare<[string], DeadLetter>('SELECT consumer, cursor, reason, at FROM inbox_dead_letters WHERE consumer = ? ORDER BY cursor').all(name);
  }

  /** How many dead letters a consumer has (for its view, without loading them). */
  deadLetterCount(name: string): number {
    return this.#db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM inbox_dead_letters WHERE consumer = ?').get(name)!.n;
  }

  /** Readable messages after the consumer's cursor: how many, and when the oldest arrived. */
  lag(c: Pick<ConsumerRow, 'cursor' | 'accounts'>): { unacknowledged: number; oldestReceivedAt: number | null } {
    const accounts = c.accounts ?? [];
    const filter = accounts.length ? ` AND account IN (${accounts.map(() => '?').join(', ')})` : '';
    const r = this.#db
      .prepare<unknown[], { n: number; oldest: number | null }>(
        `SELECT count(*) AS n, min(received_at) AS oldest FROM inbox WHERE cursor > ? AND status IN ('ok', 'undecryptable')${filter}`,
      )
      .get(c.cursor, ...accounts)!;
    return { unacknowledged: r.n, oldestReceivedAt: r.oldest };
  }

  #insert(spec: ConsumerSpec, origin: ConsumerRow['origin']): void {
    this.#db
      .prepare('INSERT INTO inbox_consumers (name, type, accounts, url, secret, origin, cursor, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)')
      .run(spec.name, spec.type, accountsColumn(spec.accounts), spec.url ?? null, spec.secret ?? null, origin, this.#now());
  }

  #delete(name: string): boolean {
    this.#db.prepare('DELETE FROM inbox_dead_letters WHERE consumer = ?').run(name);
    return this.#db.prepare('DELETE FROM inbox_consumers WHERE name = ?').run(name).changes > 0;
  }
}
