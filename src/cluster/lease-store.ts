// Account leases in the shared PostgreSQL store (docs/cluster.md). A lease row names the daemon
// that owns an account, an epoch (the fencing token, raised at every change of owner) and an
// expiry on the database's clock. Every statement here is one round trip; the lease keeper
// (lease-keeper.ts) decides when to run which.
import type { Pool, PoolClient } from 'pg';
import { withTx } from '../store/pg-tx.js';

/** A lease this daemon holds: the account and the epoch it was granted with. */
export interface HeldLease {
  account: string;
  epoch: number;
}

/** Who may make an owner-only write: the lease holder's daemon id and the lease it holds. */
export interface Fence {
  owner: string;
  lease: HeldLease;
}

/** One row of the cluster view. */
export interface LeaseRow {
  account: string;
  owner: string | null;
  epoch: number;
  acquiredAt: Date | null;
  expiresAt: Date | null;
  /** False when the lease has expired (or was released): the account is free to take. */
  live: boolean;
  /** The connection state its owner last recorded. */
  state: string | null;
}

export interface DaemonRow {
  id: string;
  host: string;
  pid: number;
  socket: string | null;
  startedAt: Date;
  seenAt: Date;
  stopping: boolean;
  live: boolean;
}

/** What a daemon tells the others about itself at each renewal. */
export interface DaemonInfo {
  id: string;
  host: string;
  pid: number;
  socket: string | null;
}

/** A write was refused because the writer no longer holds the account's lease at that epoch. */
export class FencedError extends Error {
  constructor(
    readonly account: string,
    readonly epoch: number,
  ) {
    super(`account ${account}: lease epoch ${epoch} is no longer held by this daemon; the write was refused`);
    this.name = 'FencedError';
  }
}

export class LeaseStore {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /**
   * Says this daemon is alive (and whether it is stopping); answers how many daemons are alive
   * (seen within `liveMs`, stopping ones not counted) and how many accounts there are.
   */
  async heartbeat(me: DaemonInfo, liveMs: number, stopping = false): Promise<{ liveDaemons: number; accounts: number; rank: number }> {
    const r = await this.#pool.query<{ live: string; accounts: string; rank: string }>(
      `WITH me AS (
         INSERT INTO wa_daemons (id, host, pid, socket, stopping) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET seen_at = now(), socket = EXCLUDED.socket, stopping = EXCLUDED.stopping
         RETURNING id, stopping
       )
       SELECT (SELECT count(*) FROM wa_daemons d WHERE d.id <> $1 AND NOT d.stopping AND d.seen_at > now() - make_interval(secs => $6::double precision / 1000))
                + (SELECT count(*) FROM me WHERE NOT me.stopping) AS live,
              (SELECT count(*) FROM wa_leases WHERE NOT removed) AS accounts,
              (SELECT count(*) FROM wa_daemons d WHERE d.id < $1 AND NOT d.stopping AND d.seen_at > now() - make_interval(secs => $6::double precision / 1000)) AS rank`,
      [me.id, me.host, me.pid, me.socket, stopping, liveMs],
    );
    const row = r.rows[0]!;
    return { liveDaemons: Number(row.live), accounts: Number(row.accounts), rank: Number(row.rank) };
  }

  /** Makes the accounts known to the cluster (free until someone takes them); existing rows are left alone. */
  async register(accounts: readonly string[]): Promise<void> {
    if (accounts.length === 0) return;
    await this.#pool.query(
      // Free from now (not since ever): a daemon at its share waits before taking it as an orphan.
      'INSERT INTO wa_leases (account, expires_at) SELECT unnest($1::text[]), now() ON CONFLICT (account) DO UPDATE SET removed = false WHERE wa_leases.removed',
      [accounts],
    );
  }

  /**
   * Removes an account from the cluster: no one takes it any more, and its owner's next renewal
   * fails, so the owner stops it; the lease itself runs out, never freed under a running socket.
   * The row stays, marked, so an account added again later goes on from its last epoch (a fencing
   * token is never reused).
   */
  async unregister(account: string): Promise<void> {
    await this.#pool.query('UPDATE wa_leases SET removed = true WHERE account = $1', [account]);
  }

  /**
   * Takes up to `limit` free or expired leases of accounts `owner` knows (a row of an account it
   * has no config for is left to daemons that do), for `ttlMs`, in random order (so
   * daemons starting together do not all reach for the same accounts); each granted one has a
   * new epoch. Rows another transaction is taking are skipped, not waited for. With `freeForMs`,
   * only leases free for at least that long (released, expired or never taken that long ago).
   */
  async acquire(owner: string, limit: number, ttlMs: number, known: readonly string[], freeForMs = 0): Promise<HeldLease[]> {
    if (limit <= 0 || known.length === 0) return [];
    const r = await this.#pool.query<{ account: string; epoch: string }>(
      `WITH free AS (
         SELECT account FROM wa_leases
          WHERE (owner IS NULL OR expires_at <= now()) AND expires_at <= now() - make_interval(secs => $5::double precision / 1000)
            AND NOT removed AND account = ANY($4::text[])
          ORDER BY random() LIMIT $2
          FOR UPDATE SKIP LOCKED
       )
       UPDATE wa_leases l SET owner = $1, epoch = l.epoch + 1, acquired_at = now(),
              expires_at = now() + make_interval(secs => $3::double precision / 1000)
         FROM free WHERE l.account = free.account
       RETURNING l.account, l.epoch`,
      [owner, limit, ttlMs, known, freeForMs],
    );
    return r.rows.map((row) => ({ account: row.account, epoch: Number(row.epoch) }));
  }

  /**
   * Extends the leases `owner` still holds at their epochs and that have not expired; answers the
   * accounts renewed. A lease missing from the answer is lost: its account must stop at once.
   */
  async renew(owner: string, held: readonly HeldLease[], ttlMs: number): Promise<Set<string>> {
    if (held.length === 0) return new Set();
    const r = await this.#pool.query<{ account: string }>(
      `UPDATE wa_leases l SET expires_at = now() + make_interval(secs => $4::double precision / 1000)
         FROM unnest($2::text[], $3::bigint[]) AS h(account, epoch)
        WHERE l.account = h.account AND l.epoch = h.epoch AND l.owner = $1 AND l.expires_at > now() AND NOT l.removed
       RETURNING l.account`,
      [owner, held.map((h) => h.account), held.map((h) => h.epoch), ttlMs],
    );
    return new Set(r.rows.map((row) => row.account));
  }

  /** Gives a lease up (after its socket is closed): free at once for another daemon. False if it was no longer held. */
  async release(owner: string, lease: HeldLease): Promise<boolean> {
    // Expiry now: free at once, and since when (a daemon at its share takes it only once it has stayed free a while).
    const r = await this.#pool.query('UPDATE wa_leases SET owner = NULL, expires_at = now() WHERE account = $1 AND owner = $2 AND epoch = $3', [lease.account, owner, lease.epoch]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Says this daemon is gone (a clean stop, after its leases were released). */
  async leave(id: string): Promise<void> {
    await this.#pool.query('DELETE FROM wa_daemons WHERE id = $1', [id]);
  }

  /** Every lease of an account still known, for status and the cluster view. */
  async leases(): Promise<LeaseRow[]> {
    const r = await this.#pool.query<{ account: string; owner: string | null; epoch: string; acquired_at: Date | null; expires_at: Date | null; live: boolean; state: string | null }>(
      `SELECT account, owner, epoch, acquired_at, CASE WHEN expires_at = '-infinity' THEN NULL ELSE expires_at END AS expires_at,
              (owner IS NOT NULL AND expires_at > now()) AS live, state
         FROM wa_leases ORDER BY account`,
    );
    return r.rows.map((row) => ({ account: row.account, owner: row.owner, epoch: Number(row.epoch), acquiredAt: row.acquired_at, expiresAt: row.expires_at, live: row.live, state: row.state }));
  }

  /** The owner records its account's connection state (only while it holds the lease at that epoch). */
  async noteState(owner: string, lease: HeldLease, state: string): Promise<void> {
    await this.#pool.query('UPDATE wa_leases SET state = $1, state_at = now() WHERE account = $2 AND owner = $3 AND epoch = $4', [state, lease.account, owner, lease.epoch]);
  }

  /** Every daemon that has said it is alive, and whether it still is (seen within `liveMs`). */
  async daemons(liveMs: number): Promise<DaemonRow[]> {
    const r = await this.#pool.query<{ id: string; host: string; pid: number; socket: string | null; started_at: Date; seen_at: Date; stopping: boolean; live: boolean }>(
      'SELECT id, host, pid, socket, started_at, seen_at, stopping, seen_at > now() - make_interval(secs => $1::double precision / 1000) AS live FROM wa_daemons ORDER BY id',
      [liveMs],
    );
    return r.rows.map((row) => ({ id: row.id, host: row.host, pid: row.pid, socket: row.socket, startedAt: row.started_at, seenAt: row.seen_at, stopping: row.stopping, live: row.live }));
  }
}

/**
 * Runs `fn` in a transaction that first checks, and holds for its whole length, the lease of
 * `account` at `epoch` by `owner`: a key-share lock on the lease row, so no other daemon can take
 * the account until this transaction ends (taking locks the row FOR UPDATE, skipping locked rows),
 * while the owner's own renewal (an update of other columns) is not held up by a slow write. A
 * daemon that lost the lease, even one that has not noticed yet, writes nothing. Throws
 * FencedError when the lease is not held.
 */
export function fencedTx<T>(pool: Pool, owner: string, lease: HeldLease, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  return withTx(pool, async (client) => {
    const held = await client.query('SELECT 1 FROM wa_leases WHERE account = $1 AND owner = $2 AND epoch = $3 AND expires_at > now() FOR KEY SHARE', [lease.account, owner, lease.epoch]);
    if (held.rowCount === 0) throw new FencedError(lease.account, lease.epoch);
    return fn(client);
  });
}
