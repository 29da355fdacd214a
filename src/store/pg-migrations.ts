// Numbered schema migrations for the shared PostgreSQL store, the same scheme as the SQLite ones
// (migrations.ts): each runs once, in order, recorded in schema_migrations; published entries
// never change. The pending ones run in one transaction (all or none). Daemons on several hosts
// may start at once: an advisory lock held for that transaction makes one of them migrate and
// the others wait, then find nothing to do.
import type { Pool, PoolClient } from 'pg';
import { withTx } from './pg-tx.js';

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
    // database's clock, so hosts with skewed clocks agree on who holds what. A removed account's
    // row stays (marked), so its epochs are never given out twice.
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
        expires_at   timestamptz NOT NULL DEFAULT '-infinity',
        removed      boolean NOT NULL DEFAULT false
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
  {
    version: 3,
    name: 'outbox, audit and outbox counts',
    // The SQLite store's outbox and audit as they stand after its migration 18: the same columns
    // (times epoch milliseconds), the pending-by-peer index the claim's order check runs on, and
    // counts by state and account kept by a trigger in the writing transaction (as deltas, see
    // below). Any daemon may insert a row for any account; only the account's lease holder claims
    // and moves rows.
    sql: `
      CREATE TABLE outbox (
        id               bigserial PRIMARY KEY,
        account          text NOT NULL,
        recipient        text NOT NULL,
        chat_type        text NOT NULL,
        kind             text NOT NULL,
        payload          text NOT NULL,
        message_id       text NOT NULL UNIQUE,
        state            text NOT NULL,
        reason           text,
        idempotency_key  text,
        request_id       text,
        client           text,
        client_role      text,
        attempts         integer NOT NULL DEFAULT 0,
        wire_sends       integer NOT NULL DEFAULT 0,
        wire_message     bytea,
        next_attempt_at  bigint NOT NULL DEFAULT 0,
        lease_until      bigint,
        created_at       bigint NOT NULL,
        updated_at       bigint NOT NULL,
        expires_at       bigint,
        sent_at          bigint,
        delivered_at     bigint,
        read_at          bigint,
        approved_by      text,
        UNIQUE (account, idempotency_key)
      );
      CREATE INDEX outbox_by_state ON outbox (account, state, id);
      CREATE INDEX outbox_by_peer ON outbox (account, recipient, id);
      CREATE INDEX outbox_pending_by_peer ON outbox (account, recipient, id) WHERE state IN ('queued', 'sending', 'unknown');
      CREATE TABLE audit (
        id           bigserial PRIMARY KEY,
        at           bigint NOT NULL,
        account      text NOT NULL,
        recipient    text NOT NULL,
        kind         text NOT NULL,
        decision     text NOT NULL,
        rule         text NOT NULL,
        reason       text NOT NULL,
        stage        text NOT NULL,
        outbox_id    bigint,
        client       text,
        client_role  text,
        request_id   text
      );
      CREATE INDEX audit_by_time ON audit (at);
      -- Counts by state and account, kept without a hot row: each change appends deltas (no lock
      -- on a shared row, so enqueues of one account from many daemons do not queue behind each
      -- other's commits, and no two transactions can deadlock on counts); a fold now and then adds
      -- them into outbox_counts. A read sums both.
      CREATE TABLE outbox_counts (
        state    text NOT NULL,
        account  text NOT NULL,
        n        bigint NOT NULL,
        PRIMARY KEY (state, account)
      );
      CREATE TABLE outbox_count_deltas (
        id       bigserial PRIMARY KEY,
        state    text NOT NULL,
        account  text NOT NULL,
        d        integer NOT NULL
      );
      CREATE FUNCTION outbox_count() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
          INSERT INTO outbox_count_deltas (state, account, d) VALUES (OLD.state, OLD.account, -1);
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
          INSERT INTO outbox_count_deltas (state, account, d) VALUES (NEW.state, NEW.account, 1);
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_count();
      CREATE TRIGGER outbox_counts_update AFTER UPDATE OF state, account ON outbox FOR EACH ROW
        WHEN (NEW.state IS DISTINCT FROM OLD.state OR NEW.account IS DISTINCT FROM OLD.account) EXECUTE FUNCTION outbox_count();
      CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_count();
    `,
  },
  {
    version: 4,
    name: 'inbox with commit-ordered cursors',
    // The SQLite store's inbox (its migrations 7, 10, 11 and 16). A reader pages by cursor, so a
    // cursor must never become visible after a higher one: a sequence would hand out numbers at
    // insert time, and a transaction that took a lower number but committed later would be
    // skipped by a reader already past it. inbox_cursor is one row every writer increments last,
    // just before its commit; its row lock makes the next writer wait for that commit, so cursors
    // are given in commit order (docs/cluster.md).
    sql: `
      CREATE TABLE inbox (
        cursor       bigint PRIMARY KEY,
        account      text NOT NULL,
        chat         text NOT NULL,
        id           text NOT NULL,
        sender       text NOT NULL,
        chat_type    text NOT NULL,
        kind         text NOT NULL,
        text         text,
        detail       text,
        status       text NOT NULL,
        offline      boolean NOT NULL DEFAULT false,
        timestamp    bigint NOT NULL,
        received_at  bigint NOT NULL,
        read_at      bigint,
        media        text,
        UNIQUE (account, chat, id)
      );
      CREATE INDEX inbox_by_account ON inbox (account, cursor);
      CREATE INDEX inbox_by_status ON inbox (account, status);
      CREATE INDEX inbox_by_chat ON inbox (account, chat, cursor);
      CREATE INDEX inbox_by_received ON inbox (received_at);
      CREATE TABLE inbox_cursor (
        one  boolean PRIMARY KEY DEFAULT true CHECK (one),
        n    bigint NOT NULL
      );
      INSERT INTO inbox_cursor (n) VALUES (0);
    `,
  },
  {
    version: 5,
    name: 'inbox consumers',
    // The SQLite store's inbox_consumers and inbox_dead_letters (its migration 8). A consumer's
    // cursor only moves forward, whichever daemon its reader acknowledges through.
    sql: `
      CREATE TABLE inbox_consumers (
        name             text PRIMARY KEY,
        type             text NOT NULL,
        accounts         text,
        url              text,
        secret           text,
        origin           text NOT NULL,
        cursor           bigint NOT NULL DEFAULT 0,
        created_at       bigint NOT NULL,
        acked_at         bigint,
        attempts         integer NOT NULL DEFAULT 0,
        next_attempt_at  bigint,
        last_error       text,
        last_error_at    bigint
      );
      CREATE TABLE inbox_dead_letters (
        consumer  text NOT NULL,
        cursor    bigint NOT NULL,
        reason    text NOT NULL,
        at        bigint NOT NULL,
        PRIMARY KEY (consumer, cursor)
      );
    `,
  },
  {
    version: 6,
    name: 'account state beside its lease',
    // The owner writes its account's connection state here, so any daemon's status shows it.
    sql: `
      ALTER TABLE wa_leases ADD COLUMN state text;
      ALTER TABLE wa_leases ADD COLUMN state_at timestamptz;
    `,
  },
  {
    version: 7,
    name: 'alert state shared by the cluster',
    // Raised conditions (an account's is one for the cluster; a daemon's own is keyed by it) and
    // each sink's notifications in the last hour, so the hourly cap holds over every daemon.
    sql: `
      CREATE TABLE wa_alerts_active (
        key        text PRIMARY KEY,
        daemon     text NOT NULL,
        alert      text NOT NULL,
        raised_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE wa_alert_sends (
        sink  text NOT NULL,
        at    timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX wa_alert_sends_by_sink ON wa_alert_sends (sink, at);
    `,
  },
  {
    version: 8,
    name: 'outbox changes journal with commit-ordered cursors',
    // The SQLite store's outbox_changes (its migration 9): the states a sender cares about,
    // written by trigger in the transaction of the change. A reader pages by cursor, so cursors
    // are given in commit order, as the inbox's are: a deferred trigger numbers the transaction's
    // journal rows at its commit from one counter row, whose lock makes the next transaction's
    // numbering wait for this commit (docs/cluster.md). Until then a row has no cursor and no
    // reader sees it.
    sql: `
      CREATE TABLE outbox_changes (
        id          bigserial PRIMARY KEY,
        cursor      bigint UNIQUE,
        outbox_id   bigint NOT NULL,
        account     text NOT NULL,
        message_id  text NOT NULL,
        recipient   text NOT NULL,
        state       text NOT NULL,
        reason      text,
        at          bigint NOT NULL
      );
      CREATE INDEX outbox_changes_by_account ON outbox_changes (account, cursor);
      CREATE INDEX outbox_changes_by_at ON outbox_changes (at);
      CREATE TABLE outbox_changes_cursor (
        one  boolean PRIMARY KEY DEFAULT true CHECK (one),
        n    bigint NOT NULL
      );
      INSERT INTO outbox_changes_cursor (n) VALUES (0);
      CREATE FUNCTION outbox_journal() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' AND (NEW.state IS NOT DISTINCT FROM OLD.state OR NEW.state IN ('sending', 'unknown')
            OR (NEW.state = 'queued' AND OLD.state IN ('sending', 'unknown'))) THEN
          RETURN NULL;
        END IF;
        INSERT INTO outbox_changes (outbox_id, account, message_id, recipient, state, reason, at)
          VALUES (NEW.id, NEW.account, NEW.message_id, NEW.recipient, NEW.state, NEW.reason, NEW.updated_at);
        RETURN NULL;
      END $$;
      CREATE TRIGGER outbox_journal_insert AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_journal();
      CREATE TRIGGER outbox_journal_update AFTER UPDATE OF state ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_journal();
      CREATE FUNCTION outbox_changes_number() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE c bigint;
      BEGIN
        UPDATE outbox_changes_cursor SET n = n + 1 RETURNING n INTO c;
        UPDATE outbox_changes SET cursor = c WHERE id = NEW.id;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER outbox_changes_number AFTER INSERT ON outbox_changes
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION outbox_changes_number();
    `,
  },
  {
    version: 9,
    name: 'alert rows kept fresh; the journal numbered in one step per transaction',
    // Alert rows carry when a daemon last saw the condition: a row nobody refreshed for a while
    // (its daemon died, or its clear never reached the store) is stale, no longer listed, and
    // raised anew. The journal's numbering: rows without a cursor that a transaction can see are
    // its own (a committed row has one), so the first of its deferred calls numbers them all, in
    // insertion order, in one step; each later call finds its own row numbered by its primary key
    // and returns (a count there would read every row of a large transaction again, under the
    // counter's lock).
    sql: `
      ALTER TABLE wa_alerts_active ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();
      CREATE INDEX outbox_changes_unnumbered ON outbox_changes (id) WHERE cursor IS NULL;
      CREATE OR REPLACE FUNCTION outbox_changes_number() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE k bigint; last bigint;
      BEGIN
        PERFORM 1 FROM outbox_changes WHERE id = NEW.id AND cursor IS NULL;
        IF NOT FOUND THEN RETURN NULL; END IF;
        SELECT count(*) INTO k FROM outbox_changes WHERE cursor IS NULL;
        UPDATE outbox_changes_cursor SET n = n + k RETURNING n INTO last;
        UPDATE outbox_changes o SET cursor = last - k + u.rn
          FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM outbox_changes WHERE cursor IS NULL) u
          WHERE o.id = u.id;
        RETURN NULL;
      END $$;
    `,
  },
];

/** Applies the migrations not applied yet; returns the versions it applied. */
export async function migratePg(pool: Pool, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`PostgreSQL migration ${m.name}: version ${m.version}, expected ${i + 1}`);
  });
  return withTx(pool, async (client) => {
    const applied: number[] = [];
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
    return applied;
  });
}

async function runStep(client: PoolClient, m: PgMigration): Promise<void> {
  try {
    await client.query(m.sql);
    await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
  } catch (err) {
    throw new Error(`PostgreSQL migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
  }
}
