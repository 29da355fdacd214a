// A real PostgreSQL server for a test file: a throwaway one started from the dev dependency's
// binaries (scripts/postgres-server.mjs), or, when WA_SUPERVISOR_TEST_PG_URL names a server of
// your own, a fresh database on it that is dropped afterwards.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startPostgres } from '../../scripts/postgres-server.mjs';
import { migratePg } from '../../src/store/pg-migrations.js';

export interface TestPostgres {
  url: string;
  stop: () => Promise<void>;
}

export async function testPostgres(): Promise<TestPostgres> {
  const own = process.env.WA_SUPERVISOR_TEST_PG_URL;
  if (!own) return startPostgres();
  const name = `wa_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: own });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(own);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    stop: async () => {
      const c = new pg.Client({ connectionString: own });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * A migrated database for the whole test file, and a pool on it: started before the file's tests,
 * stopped after them. Read `pool` inside tests and hooks (it exists once beforeAll ran).
 */
export function migratedPostgres(hooks: { beforeAll: (fn: () => Promise<void>, timeout?: number) => void; afterAll: (fn: () => Promise<void>) => void }, max = 10): { readonly pool: pg.Pool; readonly url: string } {
  let server: TestPostgres | undefined;
  let pool: pg.Pool | undefined;
  hooks.beforeAll(async () => {
    server = await testPostgres();
    pool = new pg.Pool({ connectionString: server.url, max });
    pool.on('error', () => undefined); // the server's own shutdown at the end
    await migratePg(pool);
  }, 60_000);
  hooks.afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });
  return {
    get pool() {
      if (!pool) throw new Error('the PostgreSQL server is not started yet (read pool inside a test or hook)');
      return pool;
    },
    get url() {
      if (!server) throw new Error('the PostgreSQL server is not started yet (read url inside a test or hook)');
      return server.url;
    },
  };
}
