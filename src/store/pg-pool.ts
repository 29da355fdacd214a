// A connection pool to the shared PostgreSQL store with every wait bounded: a statement, a lock
// wait, a transaction left idle, a connect, and a reply that never comes (a black-holed
// connection, which the server cannot see). Without them one hung connection stops lease renewal
// and keeps a lease row locked on the server until TCP gives up.
import pg from 'pg';

export interface PgPoolOptions {
  url: string;
  /** The longest a statement, a lock wait or a connect may take. */
  timeoutMs: number;
  max?: number;
}

export function createPgPool(o: PgPoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.max ?? 10,
    statement_timeout: o.timeoutMs,
    lock_timeout: o.timeoutMs,
    idle_in_transaction_session_timeout: o.timeoutMs * 2,
    query_timeout: o.timeoutMs + 1000,
    connectionTimeoutMillis: o.timeoutMs,
    keepAlive: true,
  });
  // An idle client's connection failing (the server restarting) is the pool's to replace, not a crash.
  pool.on('error', () => undefined);
  return pool;
}
