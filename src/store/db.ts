// The one state database. Durability settings are not left to defaults: better-sqlite3 builds
// SQLite so that WAL silently means synchronous=NORMAL, which can lose the last commits on power
// loss. An outbound message is acknowledged only after commit, so every commit must be on disk.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { MIGRATIONS, migrate } from './migrations.js';

/** The state database handle type. */
export type StateDb = Database.Database;

/** The database file's name inside the state directory. */
export const STATE_DB_FILE = 'state.db';

/** How long a writer waits for another connection's lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

/** Opens (creating if needed) the state database with the durability pragmas and runs migrations. */
export function openStateDb(stateDir: string, opts: { platform?: NodeJS.Platform } = {}): StateDb {
  const db = new Database(join(stateDir, STATE_DB_FILE), { timeout: BUSY_TIMEOUT_MS });
  try {
    cacheStatements(db);
    applyPragmas(db, opts.platform ?? process.platform);
    migrate(db, MIGRATIONS);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The most distinct statements one database keeps prepared (SQL built with a varying list of marks adds a few). */
export const STATEMENT_CACHE_MAX = 512;

/**
 * Makes `db.prepare` return the statement already prepared for the same SQL text. The stores
 * prepare where they query; at a hundred messages a second preparing again was a fifth of the
 * daemon's CPU. Safe because no caller changes a statement's mode (pluck, raw, expand) or holds
 * one open across another use (iterate). The statement used least recently goes when the cache is full.
 */
export function cacheStatements(db: StateDb): void {
  const cache = new Map<string, Database.Statement>();
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (stmt) cache.delete(sql); // set again below: the map's order is the order of last use
    else {
      stmt = prepare(sql);
      if (cache.size >= STATEMENT_CACHE_MAX) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, stmt);
    return stmt;
  }) as StateDb['prepare'];
}

/** Sets WAL, synchronous=FULL, foreign keys and, on macOS, F_FULLFSYNC (plain fsync there does not flush the drive cache). */
export function applyPragmas(db: StateDb, platform: NodeJS.Platform): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (String(mode).toLowerCase() !== 'wal') throw new Error(`state database refused WAL mode (got ${String(mode)}); is it on a network filesystem?`);
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  if (platform === 'darwin') {
    db.pragma('fullfsync = ON');
    db.pragma('checkpoint_fullfsync = ON');
  }
  db.pragma('journal_size_limit = 67108864');
}

/** Runs fn inside a BEGIN IMMEDIATE transaction: in WAL, a deferred read-then-write can fail with SQLITE_BUSY regardless of the timeout. */
export function writeTx<T>(db: StateDb, fn: () => T): T {
  return db.transaction(fn).immediate();
}

/** Checkpoints the WAL into the main file and closes the database (clean shutdown). */
export function closeStateDb(db: StateDb): void {
  if (!db.open) return;
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
