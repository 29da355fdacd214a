// Numbered schema migrations. Each runs once, in order, inside its own IMMEDIATE transaction, and
// is recorded in schema_migrations. Later features append entries; published entries never change.
import type Database from 'better-sqlite3';

/** One schema step. `version` numbers are 1, 2, 3, ... with no gaps. */
export interface Migration {
  version: number;
  name: string;
  up: (db: Database.Database) => void;
}

/** Every migration the daemon knows, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'daemon runs',
    up: (db) => {
      // One row per daemon start; stopped_at stays NULL when the process died without a clean
      // stop, which is how the next start knows the previous one crashed.
      db.exec(`
        CREATE TABLE daemon_runs (
          id          INTEGER PRIMARY KEY,
          pid         INTEGER NOT NULL,
          version     TEXT    NOT NULL,
          started_at  INTEGER NOT NULL,
          stopped_at  INTEGER
        );
        CREATE TABLE meta (
          key   TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );
      `);
    },
  },
  {
    version: 2,
    name: 'whatsapp auth state',
    up: (db) => {
      // Baileys' creds and Signal keys per account, as BufferJSON text. An account logged out
      // (401) or unpaired keeps its old creds in wa_creds_archive for review instead of losing them.
      db.exec(`
        CREATE TABLE wa_creds (
          account     TEXT PRIMARY KEY,
          creds       TEXT    NOT NULL,
          created_at  INTEGER NOT NULL,
          updated_at  INTEGER NOT NULL
        );
        CREATE TABLE wa_keys (
          account  TEXT NOT NULL,
          type     TEXT NOT NULL,
          id       TEXT NOT NULL,
          value    TEXT NOT NULL,
          PRIMARY KEY (account, type, id)
        ) WITHOUT ROWID;
        CREATE TABLE wa_creds_archive (
          id           INTEGER PRIMARY KEY,
          account      TEXT    NOT NULL,
          creds        TEXT    NOT NULL,
          reason       TEXT    NOT NULL,
          archived_at  INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 3,
    name: 'runtime accounts',
    up: (db) => {
      // Accounts added with `accounts add` (no config edit); config accounts are not stored here.
      db.exec(`
        CREATE TABLE runtime_accounts (
          id        TEXT PRIMARY KEY,
          ws_url    TEXT,
          added_at  INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 4,
    name: 'outbox and audit',
    up: (db) => {
      // One row per outbound message, written before the caller hears "accepted". message_id is
      // the WhatsApp id fixed at enqueue: every send of the row uses it, so a replay is never a
      // second message. payload is JSON so kinds other than text fit without a migration.
      db.exec(`
        CREATE TABLE outbox (
          id               INTEGER PRIMARY KEY,
          account          TEXT    NOT NULL,
          recipient        TEXT    NOT NULL,
          chat_type        TEXT    NOT NULL,
          kind             TEXT    NOT NULL,
          payload          TEXT    NOT NULL,
          message_id       TEXT    NOT NULL UNIQUE,
          state            TEXT    NOT NULL,
          reason           TEXT,
          idempotency_key  TEXT,
          request_id       TEXT,
          client           TEXT,
          attempts         INTEGER NOT NULL DEFAULT 0,
          wire_sends       INTEGER NOT NULL DEFAULT 0,
          next_attempt_at  INTEGER NOT NULL DEFAULT 0,
          lease_until      INTEGER,
          created_at       INTEGER NOT NULL,
          updated_at       INTEGER NOT NULL,
          expires_at       INTEGER,
          sent_at          INTEGER,
          delivered_at     INTEGER,
          read_at          INTEGER,
          UNIQUE (account, idempotency_key)
        );
        CREATE INDEX outbox_by_state ON outbox (account, state, id);
        CREATE INDEX outbox_by_peer ON outbox (account, recipient, id);
        CREATE TABLE audit (
          id          INTEGER PRIMARY KEY,
          at          INTEGER NOT NULL,
          account     TEXT    NOT NULL,
          recipient   TEXT    NOT NULL,
          kind        TEXT    NOT NULL,
          decision    TEXT    NOT NULL,
          rule        TEXT    NOT NULL,
          reason      TEXT    NOT NULL,
          stage       TEXT    NOT NULL,
          outbox_id   INTEGER,
          client      TEXT,
          request_id  TEXT
        );
        CREATE INDEX audit_by_time ON audit (at);
      `);
    },
  },
  {
    version: 5,
    name: 'outbox approvals',
    up: (db) => {
      // Who approved a held message: the approval answers a hold rule when the row is sent.
      db.exec('ALTER TABLE outbox ADD COLUMN approved_by TEXT');
    },
  },
  {
    version: 6,
    name: 'outbox pending rows by peer',
    up: (db) => {
      // The per-peer order check of claimNext asks "is an earlier row to this peer still
      // pending?". Through outbox_by_peer it walked every earlier row of the peer, finished ones
      // included, so claiming got slower with the history of each chat (invariant 13). This index
      // holds only pending rows: the check stays as cheap however much has been sent.
      db.exec(`CREATE INDEX outbox_pending_by_peer ON outbox (account, recipient, id)
               WHERE state IN ('queued', 'sending', 'unknown')`);
    },
  },
  {
    version: 7,
    name: 'inbox',
    up: (db) => {
      // Every inbound message, committed before WhatsApp is told it arrived (docs/inbox.md).
      // cursor is AUTOINCREMENT so it only grows, across daemon runs and after deletes: a reader's
      // "after N" never skips a row written later. One row per (account, chat, id): catch-up,
      // redelivery and retries of the same message land on it.
      db.exec(`
        CREATE TABLE inbox (
          cursor       INTEGER PRIMARY KEY AUTOINCREMENT,
          account      TEXT    NOT NULL,
          chat         TEXT    NOT NULL,
          id           TEXT    NOT NULL,
          sender       TEXT    NOT NULL,
          chat_type    TEXT    NOT NULL,
          kind         TEXT    NOT NULL,
          text         TEXT,
          detail       TEXT,
          status       TEXT    NOT NULL,
          offline      INTEGER NOT NULL DEFAULT 0,
          timestamp    INTEGER NOT NULL,
          received_at  INTEGER NOT NULL,
          UNIQUE (account, chat, id)
        );
        CREATE INDEX inbox_by_account ON inbox (account, cursor);
      `);
    },
  },
  {
    version: 8,
    name: 'inbox consumers',
    up: (db) => {
      // A named reader of the inbox and its committed cursor: everything at or below it is
      // acknowledged. A webhook consumer's retry state lives on its row, so a restart keeps the
      // backoff; messages it gave up on are listed in inbox_dead_letters (docs/inbox.md).
      db.exec(`
        CREATE TABLE inbox_consumers (
          name             TEXT    PRIMARY KEY,
          type             TEXT    NOT NULL,
          accounts         TEXT,
          url              TEXT,
          secret           TEXT,
          origin           TEXT    NOT NULL,
          cursor           INTEGER NOT NULL DEFAULT 0,
          created_at       INTEGER NOT NULL,
          acked_at         INTEGER,
          attempts         INTEGER NOT NULL DEFAULT 0,
          next_attempt_at  INTEGER,
          last_error       TEXT,
          last_error_at    INTEGER
        );
        CREATE TABLE inbox_dead_letters (
          consumer  TEXT    NOT NULL,
          cursor    INTEGER NOT NULL,
          reason    TEXT    NOT NULL,
          at        INTEGER NOT NULL,
          PRIMARY KEY (consumer, cursor)
        );
      `);
    },
  },
  {
    version: 9,
    name: 'outbox changes journal',
    up: (db) => {
      // What happened to our own messages, readable by cursor like the inbox: a bot that restarts
      // learns which of its messages were sent, delivered, read or refused. Triggers write the
      // journal in the same transaction as the state change, so no change can be missed. Only
      // the states a sender cares about are journalled, not the sending/unknown churn.
      db.exec(`
        CREATE TABLE outbox_changes (
          cursor      INTEGER PRIMARY KEY AUTOINCREMENT,
          outbox_id   INTEGER NOT NULL,
          account     TEXT    NOT NULL,
          message_id  TEXT    NOT NULL,
          recipient   TEXT    NOT NULL,
          state       TEXT    NOT NULL,
          reason      TEXT,
          at          INTEGER NOT NULL
        );
        CREATE INDEX outbox_changes_by_account ON outbox_changes (account, cursor);
        CREATE TRIGGER outbox_changes_insert AFTER INSERT ON outbox BEGIN
          INSERT INTO outbox_changes (outbox_id, account, message_id, recipient, state, reason, at)
          VALUES (NEW.id, NEW.account, NEW.message_id, NEW.recipient, NEW.state, NEW.reason, NEW.updated_at);
        END;
        CREATE TRIGGER outbox_changes_update AFTER UPDATE OF state ON outbox
          WHEN NEW.state IS NOT OLD.state AND NEW.state NOT IN ('sending', 'unknown')
            AND NOT (NEW.state = 'queued' AND OLD.state IN ('sending', 'unknown'))
        BEGIN
          INSERT INTO outbox_changes (outbox_id, account, message_id, recipient, state, reason, at)
          VALUES (NEW.id, NEW.account, NEW.message_id, NEW.recipient, NEW.state, NEW.reason, NEW.updated_at);
        END;
      `);
    },
  },
  {
    version: 10,
    name: 'inbox read marks and indexes',
    up: (db) => {
      // read_at: which messages a read receipt went out for. The indexes serve status counts
      // (per account and status), chat reads (unread, ?chat=) and retention (by age) without
      // scanning the table.
      const columns = db.prepare("SELECT name FROM pragma_table_info('inbox')").all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === 'read_at')) db.exec('ALTER TABLE inbox ADD COLUMN read_at INTEGER');
      db.exec(`
        CREATE INDEX inbox_by_status ON inbox (account, status);
        CREATE INDEX inbox_by_chat ON inbox (account, chat, cursor);
        CREATE INDEX inbox_by_received ON inbox (received_at);
      `);
    },
  },
  {
    version: 11,
    name: 'policy of runtime accounts',
    up: (db) => {
      // allowTo and rules an operator gave an account added at runtime (JSON), so they hold
      // across restarts like the config's.
      db.exec('ALTER TABLE runtime_accounts ADD COLUMN policy TEXT');
    },
  },
  {
    version: 12,
    name: 'role of the caller',
    up: (db) => {
      // Whether a row and a decision came from an operator or an authenticated client, so an
      // operator's self-chosen X-WA-Client label can never pass for a client's name.
      db.exec(`
        ALTER TABLE outbox ADD COLUMN client_role TEXT;
        ALTER TABLE audit ADD COLUMN client_role TEXT;
      `);
    },
  },
  {
    version: 13,
    name: 'message retry counters',
    up: (db) => {
      // Baileys' retry counters per account (src/wa/retry-counters.ts), so a restart does not
      // reset how often a message was asked for again.
      db.exec(`
        CREATE TABLE wa_retry_counters (
          account TEXT NOT NULL,
          key TEXT NOT NULL,
          value TEXT NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (account, key)
        ) WITHOUT ROWID;
        CREATE INDEX wa_retry_counters_by_age ON wa_retry_counters (updated_at);
      `);
    },
  },
  {
    version: 14,
    name: 'outbox message content',
    up: (db) => {
      // What a row sends beyond text (media, location, contact, reaction, edit, delete) lives
      // in the payload JSON; the message as it was built for its last wire send (media keys and
      // upload URL included) is kept so a retry receipt re-encrypts exactly that (docs/media.md).
      db.exec('ALTER TABLE outbox ADD COLUMN wire_message BLOB');
    },
  },
  {
    version: 15,
    name: 'inbox media references',
    up: (db) => {
      // What a download of an inbound media message needs (keys, path, hashes), kept apart from
      // `detail` so it never reaches consumers.
      db.exec('ALTER TABLE inbox ADD COLUMN media TEXT');
    },
  },
  {
    version: 16,
    name: 'outbox rows by state',
    up: (db) => {
      // Status counts each account's waiting rows (queued, sending, unknown, held): with the state
      // first, that reads those rows only, however many sent ones the outbox keeps.
      db.exec('CREATE INDEX outbox_by_state_first ON outbox (state, account)');
    },
  },
  {
    version: 17,
    name: 'lid mappings by id',
    up: (db) => {
      // The gate looks a person's other identity up at every enqueue and send; without an account
      // (a LID names one person for every account) that read scanned every key of every account.
      db.exec("CREATE INDEX wa_keys_lid_mapping ON wa_keys (id) WHERE type = 'lid-mapping'");
    },
  },
  {
    version: 18,
    name: 'outbox counts',
    up: (db) => {
      // Status, metrics and the alert monitor count the outbox's rows by state at every call. The
      // outbox keeps its finished rows until an operator prunes them, so counting the rows grew
      // with everything ever sent (11 ms at 200,000 rows). The counts are kept beside the rows, by
      // triggers, in the transaction that changes them; a count that falls to 0 stays as a 0.
      db.exec(`
        CREATE TABLE outbox_counts (
          state   TEXT    NOT NULL,
          account TEXT    NOT NULL,
          n       INTEGER NOT NULL,
          PRIMARY KEY (state, account)
        ) WITHOUT ROWID;
        INSERT INTO outbox_counts (state, account, n) SELECT state, account, count(*) FROM outbox GROUP BY state, account;
        CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
          INSERT INTO outbox_counts (state, account, n) VALUES (NEW.state, NEW.account, 1)
            ON CONFLICT (state, account) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER outbox_counts_update AFTER UPDATE OF state, account ON outbox
          WHEN NEW.state IS NOT OLD.state OR NEW.account IS NOT OLD.account
        BEGIN
          UPDATE outbox_counts SET n = n - 1 WHERE state = OLD.state AND account = OLD.account;
          INSERT INTO outbox_counts (state, account, n) VALUES (NEW.state, NEW.account, 1)
            ON CONFLICT (state, account) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
          UPDATE outbox_counts SET n = n - 1 WHERE state = OLD.state AND account = OLD.account;
        END;
      `);
    },
  },
];

/** Applies the migrations not yet recorded; refuses a database newer than this code. */
export function migrate(db: Database.Database, migrations: readonly Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list is out of order at "${m.name}": expected version ${i + 1}, got ${m.version}`);
  });
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version),
  );
  const newest = Math.max(0, ...applied);
  if (newest > migrations.length) {
    throw new Error(
      `state database schema is version ${newest}, newer than this wa-supervisor knows (${migrations.length}); ` +
        'run the newer version or restore a backup',
    );
  }
  const ran: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      m.up(db);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    }).immediate();
    ran.push(m.version);
  }
  return ran;
}
