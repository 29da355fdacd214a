// Baileys auth state in the shared PostgreSQL store (docs/cluster.md): the same tables and the same
// behaviour as the SQLite store (wa/auth-store.ts), for the daemon that holds the account's lease.
// Every write is one transaction fenced by that lease (cluster/lease-store.ts fencedTx), so a
// daemon that lost the account writes no key and no creds, even before it notices. The creds are
// read once when the store opens: isRegistered, createdAt and state answer from them.
import { decodeCreds, decodeKey, encodeAuth, freshCreds, hasIdentity, type AuthenticationCreds, type AuthenticationState, type SignalDataSet, type SignalDataTypeMap } from '../wa/auth-codec.js';
import type { Pool } from 'pg';
import { fencedTx, type Fence } from '../cluster/lease-store.js';
import { sliceBoundary } from '../wa/loop-slices.js';


interface Saved {
  creds: AuthenticationCreds;
  registered: boolean;
  createdAt: number;
}

export class PgAuthStore {
  readonly #pool: Pool;
  readonly #fence: Fence;
  readonly account: string;
  /** What the store holds as committed: the creds read at open (handed to Baileys), whether they were registered, since when. */
  #saved: Saved | null;
  #creds: AuthenticationCreds | null = null;
  /** Writes go one after another, in call order, as on SQLite: Baileys does not wait for a creds save before the next. */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(pool: Pool, fence: Fence, saved: Saved | null) {
    this.#pool = pool;
    this.#fence = fence;
    this.account = fence.lease.account;
    this.#saved = saved;
  }

  /** Opens the store of the account whose lease `fence` holds (only that holder may write), reading its saved creds. */
  static async open(pool: Pool, fence: Fence): Promise<PgAuthStore> {
    const r = await pool.query<{ creds: string; created_at: string }>('SELECT creds, created_at FROM wa_creds WHERE account = $1', [fence.lease.account]);
    const row = r.rows[0];
    if (!row) return new PgAuthStore(pool, fence, null);
    const creds = decodeCreds(row.creds);
    return new PgAuthStore(pool, fence, { creds, registered: hasIdentity(creds), createdAt: Number(row.created_at) });
  }

  /** True when the account has saved creds that completed pairing (a `me` identity). */
  isRegistered(): boolean {
    return this.#saved?.registered ?? false;
  }

  /** When the creds were first saved, or null. */
  createdAt(): number | null {
    return this.#saved?.createdAt ?? null;
  }

  /** The state to hand to Baileys: the saved creds (fresh ones if none) and a key store on this database. */
  state(): AuthenticationState {
    // The live creds object while there is one: Baileys changes it in place and the write of the
    // change may not have committed yet (a connection opened right after a pairing's 515 must go on
    // with the new identity, not the one last saved).
    const creds = this.#creds ?? this.#saved?.creds ?? freshCreds();
    this.#creds = creds;
    return {
      creds,
      keys: {
        get: async <T extends keyof SignalDataTypeMap>(type: T, ids: string[]) => {
          await sliceBoundary();
          return this.#getKeys(type, ids);
        },
        set: (data: SignalDataSet) => this.#setKeys(data),
        clear: async () => {
          await this.#write((c) => c.query('DELETE FROM wa_keys WHERE account = $1', [this.account]));
        },
      },
    };
  }

  /** Persists the creds object last handed out by state() (Baileys mutates it in place). */
  async saveCreds(): Promise<void> {
    if (!this.#creds) return;
    const creds = this.#creds;
    // The creds as they are now, in the order of the calls: a later save never commits before an earlier one.
    const text = encodeAuth(creds);
    const registered = hasIdentity(creds);
    const now = Date.now();
    const createdAt = await this.#write(async (c) => {
      const r = await c.query<{ created_at: string }>(
        `INSERT INTO wa_creds (account, creds, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (account) DO UPDATE SET creds = EXCLUDED.creds, updated_at = EXCLUDED.updated_at
         RETURNING created_at`,
        [this.account, text, now],
      );
      return Number(r.rows[0]!.created_at);
    });
    this.#saved = { creds, registered, createdAt };
  }

  /**
   * Moves the creds to the archive (kept for review) and deletes the Signal keys, so the next
   * connect starts a fresh pairing. Resolves false when there was nothing to archive.
   */
  async archive(reason: string): Promise<boolean> {
    this.#creds = null;
    const archived = await this.#write(async (c) => {
      await c.query('DELETE FROM wa_keys WHERE account = $1', [this.account]);
      const moved = await c.query(
        `WITH gone AS (DELETE FROM wa_creds WHERE account = $1 RETURNING account, creds)
         INSERT INTO wa_creds_archive (account, creds, reason, archived_at) SELECT account, creds, $2, $3 FROM gone`,
        [this.account, reason, Date.now()],
      );
      return (moved.rowCount ?? 0) > 0;
    });
    this.#saved = null;
    return archived;
  }

  /**
   * The other half of a LID <-> phone number mapping Baileys learned (`<phone>` holds the LID,
   * `<lid>_reverse` the phone), or null; without an account, any account's mapping answers.
   */
  static async mappedUser(pool: Pool, account: string | undefined, key: { phone: string } | { lid: string }): Promise<string | null> {
    const id = 'phone' in key ? key.phone : `${key.lid}_reverse`;
    const r =
      account === undefined
        ? await pool.query<{ value: string }>("SELECT value FROM wa_keys WHERE type = 'lid-mapping' AND id = $1 LIMIT 1", [id])
        : await pool.query<{ value: string }>("SELECT value FROM wa_keys WHERE account = $1 AND type = 'lid-mapping' AND id = $2", [account, id]);
    const row = r.rows[0];
    if (!row) return null;
    const v = JSON.parse(row.value) as unknown;
    return typeof v === 'string' && /^\d+$/.test(v) ? v : null;
  }

  #write<T>(fn: Parameters<typeof fencedTx<T>>[3]): Promise<T> {
    const done = this.#chain.then(() => fencedTx(this.#pool, this.#fence.owner, this.#fence.lease, fn));
    this.#chain = done.catch(() => undefined);
    return done;
  }

  async #getKeys<T extends keyof SignalDataTypeMap>(type: T, ids: string[]): Promise<{ [id: string]: SignalDataTypeMap[T] }> {
    const out: { [id: string]: SignalDataTypeMap[T] } = {};
    if (ids.length === 0) return out;
    // A read sees every write asked for before it (as on SQLite), committed or not yet.
    await this.#chain;
    const r = await this.#pool.query<{ id: string; value: string }>('SELECT id, value FROM wa_keys WHERE account = $1 AND type = $2 AND id = ANY($3::text[])', [this.account, type, ids]);
    for (const row of r.rows) out[row.id] = decodeKey(type, row.value);
    return out;
  }

  async #setKeys(data: SignalDataSet): Promise<void> {
    const puts: { types: string[]; ids: string[]; values: string[] } = { types: [], ids: [], values: [] };
    const dels: { types: string[]; ids: string[] } = { types: [], ids: [] };
    for (const [type, entries] of Object.entries(data)) {
      for (const [id, value] of Object.entries(entries ?? {})) {
        if (value === null || value === undefined) (dels.types.push(type), dels.ids.push(id));
        else (puts.types.push(type), puts.ids.push(id), puts.values.push(encodeAuth(value)));
      }
    }
    if (puts.ids.length === 0 && dels.ids.length === 0) return;
    // One round trip per kind of change, whatever the number of keys (a first login writes hundreds).
    await this.#write(async (c) => {
      if (dels.ids.length) await c.query('DELETE FROM wa_keys k USING unnest($2::text[], $3::text[]) AS d(type, id) WHERE k.account = $1 AND k.type = d.type AND k.id = d.id', [this.account, dels.types, dels.ids]);
      if (puts.ids.length) {
        await c.query(
          `INSERT INTO wa_keys (account, type, id, value) SELECT $1, t, i, v FROM unnest($2::text[], $3::text[], $4::text[]) AS p(t, i, v)
           ON CONFLICT (account, type, id) DO UPDATE SET value = EXCLUDED.value`,
          [this.account, puts.types, puts.ids, puts.values],
        );
      }
    });
  }
}
