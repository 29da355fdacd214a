// A real PostgreSQL server for a test file: a throwaway one started from the dev dependency's
// binaries (scripts/postgres-server.mjs), or, when WA_SUPERVISOR_TEST_PG_URL names a server of
// your own, a fresh database on it that is dropped afterwards.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startPostgres } from '../../scripts/postgres-server.mjs';

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
