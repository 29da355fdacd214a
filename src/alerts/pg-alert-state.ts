// Alert state shared by the daemons of a cluster (docs/cluster.md): which conditions are raised, and
// how many notifications each sink was sent in the last hour. An account's condition is one alert
// for the cluster, whichever daemon sees it (after a hand-over the new owner adopts what the old
// one raised instead of raising it again); a daemon's own condition (the store cut off, its event
// loop stalled) is keyed by the daemon. Every daemon that still sees a condition refreshes its row;
// a row nobody refreshed for `staleMs` (its daemon died, or its clear never reached the store) is
// gone: no longer listed, and the next daemon that sees the condition raises it anew.
import type { Pool } from 'pg';
import { withTx } from '../store/pg-tx.js';
import type { Alert, SharedAlertState } from './engine.js';

export class PgAlertState implements SharedAlertState {
  readonly #pool: Pool;
  readonly #daemon: string;
  readonly #staleMs: number;

  constructor(pool: Pool, opts: { daemon: string; staleMs: number }) {
    this.#pool = pool;
    this.#daemon = opts.daemon;
    this.#staleMs = opts.staleMs;
  }

  keyOf(code: string, account: string | undefined): string {
    return account ? `${code}:${account}` : `${code}@${this.#daemon}`;
  }

  async claim(key: string, alert: Alert): Promise<boolean> {
    // New, or in place of a stale row: this daemon notifies. A fresh row: adopted (its notification stands).
    const r = await this.#pool.query(
      `INSERT INTO wa_alerts_active AS a (key, daemon, alert) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET daemon = $2, alert = $3, raised_at = now(), seen_at = now()
         WHERE a.seen_at < now() - make_interval(secs => $4::double precision / 1000)
       RETURNING key`,
      [key, this.#daemon, JSON.stringify(alert), this.#staleMs],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async refresh(keys: readonly string[]): Promise<void> {
    // A row already stale stays so: a claim may be replacing it (its condition is raised anew).
    if (keys.length) {
      await this.#pool.query(
        'UPDATE wa_alerts_active SET seen_at = now() WHERE key = ANY($1::text[]) AND seen_at >= now() - make_interval(secs => $2::double precision / 1000)',
        [[...keys], this.#staleMs],
      );
    }
  }

  async release(key: string): Promise<boolean> {
    return ((await this.#pool.query('DELETE FROM wa_alerts_active WHERE key = $1', [key])).rowCount ?? 0) > 0;
  }

  async takeSend(sink: string, capPerHour: number): Promise<boolean> {
    return withTx(this.#pool, async (c) => {
      // One sink's count and insert at a time across the cluster.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`wa-supervisor alert sink ${sink}`]);
      await c.query("DELETE FROM wa_alert_sends WHERE sink = $1 AND at < now() - interval '1 hour'", [sink]);
      const n = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM wa_alert_sends WHERE sink = $1', [sink])).rows[0]!.n);
      if (n >= capPerHour) return false;
      await c.query('INSERT INTO wa_alert_sends (sink) VALUES ($1)', [sink]);
      return true;
    });
  }

  async active(): Promise<Alert[]> {
    const r = await this.#pool.query<{ alert: string }>(
      'SELECT alert FROM wa_alerts_active WHERE seen_at >= now() - make_interval(secs => $1::double precision / 1000) ORDER BY raised_at',
      [this.#staleMs],
    );
    return r.rows.map((row) => JSON.parse(row.alert) as Alert);
  }
}
