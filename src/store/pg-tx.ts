// One PostgreSQL transaction on a client of its own: BEGIN, the work, COMMIT; ROLLBACK when the
// work throws; the client goes back to the pool either way.
import type { Pool, PoolClient } from 'pg';

export async function withTx<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
