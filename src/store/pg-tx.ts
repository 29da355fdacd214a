// One PostgreSQL transaction on a client of its own: BEGIN, the work, COMMIT; ROLLBACK when the
// work throws. A client whose transaction failed is closed, not given back to the pool: after a
// client-side timeout its ROLLBACK may never have reached the server, and the next borrower's
// COMMIT would commit the failed work.
import type { Pool, PoolClient } from 'pg';

export async function withTx<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    client.release();
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(true);
    throw err;
  }
}
