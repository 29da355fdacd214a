// One PostgreSQL transaction on a client of its own: BEGIN, the work, COMMIT; ROLLBACK when the
// work throws. A client whose ROLLBACK failed is closed, not given back to the pool: after a
// client-side timeout the ROLLBACK may never have reached the server (it times out too), and the
// next borrower's COMMIT would commit the failed work. A transaction the server chose as a deadlock's victim is
// run again (twice at most): it was rolled back whole, and `fn` keeps its state inside.
import type { Pool, PoolClient } from 'pg';

const DEADLOCK = '40P01';

export async function withTx<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(pool, fn);
    } catch (err) {
      if ((err as { code?: string }).code !== DEADLOCK || attempt >= 2) throw err;
    }
  }
}

async function once<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    client.release();
    return out;
  } catch (err) {
    const rolledBack = await client.query('ROLLBACK').then(
      () => true,
      () => false,
    );
    client.release(!rolledBack);
    throw err;
  }
}
