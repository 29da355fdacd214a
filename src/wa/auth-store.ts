// Baileys auth state (creds and Signal keys) kept per account in the state database, instead of
// Baileys' multi-file store, which its authors call unfit for production. Every write is one
// IMMEDIATE transaction, so a crash never leaves half a key set behind.
import { decodeCreds, decodeKey, encodeAuth, freshCreds, hasIdentity, type AuthenticationCreds, type AuthenticationState, type SignalDataSet, type SignalDataTypeMap } from './auth-codec.js';
import type { StateDb } from '../store/db.js';
import { writeTx } from '../store/db.js';
import type { Statement } from 'better-sqlite3';
import { sliceBoundary } from './loop-slices.js';

/** One account's auth state in the database. */
export class SqliteAuthStore {
  readonly #db: StateDb;
  readonly account: string;
  #creds: AuthenticationCreds | null = null;

  constructor(db: StateDb, account: string) {
    this.#db = db;
    this.account = account;
  }

  /** True when the account has saved creds that completed pairing (a `me` identity). */
  isRegistered(): boolean {
    const creds = this.#load();
    return creds !== null && hasIdentity(creds);
  }

  /** When the creds were first saved, or null. */
  createdAt(): number | null {
    const row = this.#db.prepare('SELECT created_at AS t FROM wa_creds WHERE account = ?').get(this.account) as { t: number } | undefined;
    return row?.t ?? null;
  }

  /** The state to hand to Baileys: the saved creds (fresh ones if none) and a key store on this database. */
  state(): AuthenticationState {
    const creds = this.#load() ?? freshCreds();
    this.#creds = creds;
    return {
      creds,
      keys: {
        // A slice boundary: long Signal work of one account lets the loop read between key reads.
        get: async <T extends keyof SignalDataTypeMap>(type: T, ids: string[]) => {
          await sliceBoundary();
          return this.#getKeys(type, ids);
        },
        set: (data: SignalDataSet) => this.#setKeys(data),
        clear: () => {
          writeTx(this.#db, () => this.#db.prepare('DELETE FROM wa_keys WHERE account = ?').run(this.account));
        },
      },
    };
  }

  /** Persists the creds object last handed out by state() (Baileys mutates it in place). */
  saveCreds(): void {
    if (!this.#creds) return;
    const text = encodeAuth(this.#creds);
    const now = Date.now();
    writeTx(this.#db, () => {
      this.#db
        .prepare(
          `INSERT INTO wa_creds (account, creds, created_at, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (account) DO UPDATE SET creds = excluded.creds, updated_at = excluded.updated_at`,
        )
        .run(this.account, text, now, now);
    });
  }

  /**
   * Moves the creds to the archive (kept for review) and deletes the Signal keys, so the next
   * connect starts a fresh pairing. Returns false when there was nothing to archive.
   */
  archive(reason: string): boolean {
    this.#creds = null;
    return writeTx(this.#db, () => {
      const row = this.#db.prepare('SELECT creds FROM wa_creds WHERE account = ?').get(this.account) as { creds: string } | undefined;
      this.#db.prepare('DELETE FROM wa_keys WHERE account = ?').run(this.account);
      if (!row) return false;
      this.#db
        .prepare('INSERT INTO wa_creds_archive (account, creds, reason, archived_at) VALUES (?, ?, ?, ?)')
        .run(this.account, row.creds, reason, Date.now());
      this.#db.prepare('DELETE FROM wa_creds WHERE account = ?').run(this.account);
      return true;
    });
  }

  /**
   * The other half of a LID <-> phone number mapping Baileys learned (its `lid-mapping` keys:
   * `<phone>` holds the LID, `<lid>_reverse` the phone), or null. A LID names one person for
   * every account, so without an account any account's mapping answers.
   */
  static mappedUser(db: StateDb, account: string | undefined, key: { phone: string } | { lid: string }): string | null {
    const id = 'phone' in key ? key.phone : `${key.lid}_reverse`;
    const s = keyStatements(db);
    const row = (account === undefined ? s.mappingAny.get(id) : s.mapping.get(account, id)) as { value: string } | undefined;
    if (!row) return null;
    const v = JSON.parse(row.value) as unknown;
    return typeof v === 'string' && /^\d+$/.test(v) ? v : null;
  }

  #load(): AuthenticationCreds | null {
    const row = this.#db.prepare('SELECT creds FROM wa_creds WHERE account = ?').get(this.account) as { creds: string } | undefined;
    return row ? decodeCreds(row.creds) : null;
  }

  #getKeys<T extends keyof SignalDataTypeMap>(type: T, ids: string[]): { [id: string]: SignalDataTypeMap[T] } {
    const out: { [id: string]: SignalDataTypeMap[T] } = {};
    const stmt = keyStatements(this.#db).get;
    for (const id of ids) {
      const row = stmt.get(this.account, type, id) as { value: string } | undefined;
      if (!row) continue;
      out[id] = decodeKey(type, row.value);
    }
    return out;
  }

  #setKeys(data: SignalDataSet): void {
    writeTx(this.#db, () => {
      const { put, del } = keyStatements(this.#db);
      for (const [type, entries] of Object.entries(data)) {
        for (const [id, value] of Object.entries(entries ?? {})) {
          if (value === null || value === undefined) del.run(this.account, type, id);
          else put.run(this.account, type, id, encodeAuth(value));
        }
      }
    });
  }
}

/** The key statements, prepared once per database (every message reads and writes Signal keys). */
/** The LID-mapping reads: each finds its row through an index, never by scanning every key (tests check the plans). */
export const LID_MAPPING_SQL = {
  account: "SELECT value FROM wa_keys WHERE account = ? AND type = 'lid-mapping' AND id = ?",
  any: "SELECT value FROM wa_keys WHERE type = 'lid-mapping' AND id = ? LIMIT 1",
} as const;

interface KeyStatements {
  get: Statement;
  put: Statement;
  del: Statement;
  /** One account's LID mapping (the primary key). */
  mapping: Statement;
  /** Any account's LID mapping (the partial index of migration 17). */
  mappingAny: Statement;
}
const statements = new WeakMap<StateDb, KeyStatements>();
function keyStatements(db: StateDb): KeyStatements {
  let s = statements.get(db);
  if (!s) {
    s = {
      get: db.prepare('SELECT value FROM wa_keys WHERE account = ? AND type = ? AND id = ?'),
      put: db.prepare('INSERT INTO wa_keys (account, type, id, value) VALUES (?, ?, ?, ?) ON CONFLICT (account, type, id) DO UPDATE SET value = excluded.value'),
      del: db.prepare('DELETE FROM wa_keys WHERE account = ? AND type = ? AND id = ?'),
      mapping: db.prepare(LID_MAPPING_SQL.account),
      mappingAny: db.prepare(LID_MAPPING_SQL.any),
    };
    statements.set(db, s);
  }
  return s;
}
