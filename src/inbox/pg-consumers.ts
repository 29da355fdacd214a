// Inbox consumers in the shared PostgreSQL store (docs/cluster.md): the same rows and rules as the
// SQLite store (consumers.ts). A reader may acknowledge through any daemon: a cursor only moves
// forward (GREATEST), so acknowledgements arriving out of order through two daemons never move it
// back. Config consumers are kept in step by each daemon that starts with the config, in one
// transaction under a lock on the table, so two daemons starting together do not interleave.
import type { Pool, PoolClient } from 'pg';
import { numberOrNull as num } from '../store/row-values.js';
import { withTx } from '../store/pg-tx.js';
import { accountsColumn, consumerRowFrom, type ConsumerBackend, type ConsumerIdentity, type ConsumerRow, type ConsumerSpec, type DeadLetter, type StoredConsumerRow } from './consumers.js';

type PgRow = StoredConsumerRow;
const fromPg = consumerRowFrom;

export class PgConsumerStore implements ConsumerBackend {
  readonly #pool: Pool;
  readonly #now: () => number;
  readonly #keepUnlisted: boolean;

  /**
   * `keepUnlisted` (a cluster): a config sync keeps the config consumers this daemon's config does
   * not list. Daemons' configs differ during a rolling change, and one started with an older file
   * must not delete the others' consumers with their cursors (re-added, they would start over at 0).
   */
  constructor(pool: Pool, opts: { now?: () => number; keepUnlisted?: boolean } = {}) {
    this.#pool = pool;
    this.#now = opts.now ?? Date.now;
    this.#keepUnlisted = opts.keepUnlisted ?? false;
  }

  /** One consumer, or null. */
  async get(name: string): Promise<ConsumerRow | null> {
    const r = (await this.#pool.query<PgRow>('SELECT * FROM inbox_consumers WHERE name = $1', [name])).rows[0];
    return r ? fromPg(r) : null;
  }

  /** Every consumer, by name. */
  async list(): Promise<ConsumerRow[]> {
    return (await this.#pool.query<PgRow>('SELECT * FROM inbox_consumers ORDER BY name')).rows.map(fromPg);
  }

  /**
   * Makes the config consumers what the config says (one transaction): new ones start at cursor 0,
   * changed ones keep their cursor, ones no longer listed are removed; an API consumer of the same
   * name becomes a config consumer, keeping its cursor.
   */
  async syncConfig(specs: readonly ConsumerSpec[]): Promise<{ added: string[]; removed: string[] }> {
    return withTx(this.#pool, async (c) => {
      await c.query('LOCK TABLE inbox_consumers IN SHARE ROW EXCLUSIVE MODE');
      const existing = new Map((await c.query<PgRow>('SELECT * FROM inbox_consumers')).rows.map((r) => [r.name, fromPg(r)]));
      const wanted = new Set(specs.map((s) => s.name));
      const added: string[] = [];
      const removed: string[] = [];
      for (const spec of specs) {
        if (existing.has(spec.name)) {
          await c.query("UPDATE inbox_consumers SET type = $1, accounts = $2, url = $3, secret = $4, origin = 'config' WHERE name = $5", [
            spec.type,
            accountsColumn(spec.accounts),
            spec.url ?? null,
            spec.secret ?? null,
            spec.name,
          ]);
        } else {
          await this.#insert(c, spec, 'config');
          added.push(spec.name);
        }
      }
      for (const existingConsumer of existing.values()) {
        if (this.#keepUnlisted) break;
        if (existingConsumer.origin === 'config' && !wanted.has(existingConsumer.name)) {
          await this.#delete(c, existingConsumer.name);
          removed.push(existingConsumer.name);
        }
      }
      return { added, removed };
    });
  }

  /** Adds an API consumer; false when the name is taken. */
  async add(spec: ConsumerSpec): Promise<boolean> {
    const r = await this.#pool.query(
      `INSERT INTO inbox_consumers (name, type, accounts, url, secret, origin, cursor, created_at) VALUES ($1, $2, $3, $4, $5, 'api', 0, $6)
       ON CONFLICT (name) DO NOTHING`,
      [spec.name, spec.type, accountsColumn(spec.accounts), spec.url ?? null, spec.secret ?? null, this.#now()],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** Removes a consumer and its dead letters; false when there was none. */
  async remove(name: string): Promise<boolean> {
    return withTx(this.#pool, (c) => this.#delete(c, name));
  }

  /** Commits `cursor` as acknowledged (never moving back) and clears retry state; the committed cursor, or null for an unknown consumer. */
  async ack(name: string, cursor: number, as?: ConsumerIdentity): Promise<number | null> {
    const same = as ? ' AND created_at = $4 AND type = $5 AND accounts IS NOT DISTINCT FROM $6' : '';
    const r = await this.#pool.query<{ cursor: string }>(
      `UPDATE inbox_consumers SET cursor = GREATEST(cursor, $1), acked_at = $2, attempts = 0, next_attempt_at = NULL WHERE name = $3${same} RETURNING cursor`,
      [cursor, this.#now(), name, ...(as ? [as.createdAt, as.type, accountsColumn(as.accounts)] : [])],
    );
    const row = r.rows[0];
    return row ? Number(row.cursor) : null;
  }

  /** Records a failed webhook delivery and when to try again. */
  async recordFailure(name: string, error: string, nextAttemptAt: number): Promise<void> {
    await this.#pool.query('UPDATE inbox_consumers SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, last_error_at = $3 WHERE name = $4', [nextAttemptAt, error, this.#now(), name]);
  }

  /** Gives up on one message for a consumer: lists it as dead and moves the cursor past it (one transaction). */
  async deadLetter(name: string, cursor: number, reason: string): Promise<void> {
    await withTx(this.#pool, async (c) => {
      await c.query(
        'INSERT INTO inbox_dead_letters (consumer, cursor, reason, at) VALUES ($1, $2, $3, $4) ON CONFLICT (consumer, cursor) DO UPDATE SET reason = EXCLUDED.reason, at = EXCLUDED.at',
        [name, cursor, reason, this.#now()],
      );
      await c.query('UPDATE inbox_consumers SET cursor = GREATEST(cursor, $1), attempts = 0, next_attempt_at = NULL WHERE name = $2', [cursor, name]);
    });
  }

  /** A consumer's dead letters, oldest first. */
  async deadLetters(name: string): Promise<DeadLetter[]> {
    const r = await this.#pool.query<{ consumer: string; cursor: string; reason: string; at: string }>('SELECT consumer, cursor, reason, at FROM inbox_dead_letters WHERE consumer = $1 ORDER BY cursor', [name]);
    return r.rows.map((d) => ({ consumer: d.consumer, cursor: Number(d.cursor), reason: d.reason, at: Number(d.at) }));
  }

  /** How many dead letters a consumer has. */
  async deadLetterCount(name: string): Promise<number> {
    return Number((await this.#pool.query<{ n: string }>('SELECT count(*) AS n FROM inbox_dead_letters WHERE consumer = $1', [name])).rows[0]!.n);
  }

  /** Readable messages after the consumer's cursor: how many, and when the oldest arrived. */
  async lag(c: Pick<ConsumerRow, 'cursor' | 'accounts'>): Promise<{ unacknowledged: number; oldestReceivedAt: number | null }> {
    const accounts = c.accounts ?? [];
    const r = await this.#pool.query<{ n: string; oldest: string | null }>(
      `SELECT count(*) AS n, min(received_at) AS oldest FROM inbox WHERE cursor > $1 AND status IN ('ok', 'undecryptable')${accounts.length ? ' AND account = ANY($2::text[])' : ''}`,
      accounts.length ? [c.cursor, accounts] : [c.cursor],
    );
    return { unacknowledged: Number(r.rows[0]!.n), oldestReceivedAt: num(r.rows[0]!.oldest) };
  }

  async #insert(c: PoolClient, spec: ConsumerSpec, origin: ConsumerRow['origin']): Promise<void> {
    await c.query('INSERT INTO inbox_consumers (name, type, accounts, url, secret, origin, cursor, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)', [
      spec.name,
      spec.type,
      accountsColumn(spec.accounts),
      spec.url ?? null,
      spec.secret ?? null,
      origin,
      this.#now(),
    ]);
  }

  async #delete(c: PoolClient, name: string): Promise<boolean> {
    await c.query('DELETE FROM inbox_dead_letters WHERE consumer = $1', [name]);
    return ((await c.query('DELETE FROM inbox_consumers WHERE name = $1', [name])).rowCount ?? 0) > 0;
  }
}
