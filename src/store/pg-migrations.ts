// Numbered schema migrations for the shared PostgreSQL store, the same scheme as the SQLite ones
// (migrations.ts): each runs once, in order, recorded in schema_migrations; published entries
// never change. The pending ones run in one transaction (all or none). Daemons on several hosts
// may start at once: an advisory lock held for that transaction makes one of them migrate and
// the others wait, then find nothing to do.
import type { Pool, PoolClient } from 'pg';

export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

/** The advisory-lock key migrations hold (any fixed number; this one spells "wasv"). */
const MIGRATION_LOCK = 0x77617376;

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'daemons and account leases',
    // A daemon's row says it is alive (seen_at, renewed with its leases) and which socket it
    // answers on. A lease row says which daemon owns an account until when; the epoch goes up at
    // every change of owner and is the fencing token every owner-only write checks. Times are the
    // database's clock, so hosts with skewed clocks agree on who holds what.
    sql: `
      CREATE TABLE wa_daemons (
        id          text PRIMARY KEY,
        host        text NOT NULL,
        pid         integer NOT NULL,
        socket      text,
        started_at  timestamptz NOT NULL DEFAULT now(),
        seen_at     timestamptz NOT NULL DEFAULT now(),
        stopping    boolean NOT NULL DEFAULT false
      );
      CREATE TABLE wa_leases (
        account      text PRIMARY KEY,
        owner        text,
        epoch        bigint NOT NULL DEFAULT 0,
        acquired_at  timestamptz,
        expires_at   timestamptz NOT NULL DEFAULT '-infinity'
      );
      CREATE INDEX wa_leases_owner ON wa_leases (owner);
    `,
  },
  {
    version: 2,
    name: 'whatsapp auth state',
    // The SQLite store's wa_creds, wa_keys and wa_creds_archive (its migrations 2 and 17): values
    // are BufferJSON text, times epoch milliseconds. Only the account's lease holder writes them
    // (cluster/lease-store.ts fencedTx).
    sql: `
      CREATE TABLE wa_creds (
        account     text PRIMARY KEY,
        creds       text NOT NULL,
        created_at  bigint NOT NULL,
        updated_at  bigint NOT NULL
      );
      CREATE TABLE wa_keys (
        account  text NOT NULL,
        type     text NOT NULL,
        id       text NOT NULL,
        value    text NOT NULL,
        PRIMARY KEY (account, type, id)
      );
      CREATE INDEX wa_keys_lid_mapping ON wa_keys (id) WHERE type = 'lid-mapping';
      CREATE TABLE wa_creds_archive (
        id           bigserial PRIMARY KEY,
        account      text NOT NULL,
        creds        text NOT NULL,
        reason       text NOT NULL,
        archived_at  bigint NOT NULL
      );
    `,
  },
];

/** Applies the migrations not applied yet; returns the versions it applied. */
export async function migratePg(pool: Pool, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`PostgreSQL migration ${m.name}: version ${m.version}, expected ${i + 1}`);
  });
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    if (newest > migrations.length) {
      throw new Error(`the PostgreSQL store is at schema version ${newest}, newer than this daemon knows (${migrations.length}): upgrade this daemon first`);
    }
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await runStep(client, m);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

async function runStep(client: PoolClient, m: PgMigration): Promise<void> {
  try {
    await client.query(m.sql);
    await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
  } catch (err) {
    throw new Error(`PostgreSQL migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
  }
}
