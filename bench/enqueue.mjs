// bench/enqueue: durable enqueue over the control socket (POST /v1/messages, acknowledged after
// commit) at concurrency 1 and 32, beside a raw better-sqlite3 insert loop with the same pragmas
// (WAL, synchronous=FULL) on the same disk, in the same run.
// Usage: node bench/enqueue.mjs [--n1 1000] [--n32 8000]
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { percentile, report, startDaemon, startEmulator, timedRounds } from './lib.mjs';

const { values } = parseArgs({ options: { n1: { type: 'string', default: '1000' }, n32: { type: 'string', default: '8000' } } });
const n1 = Number(values.n1);
const n32 = Number(values.n32);

function rawSingleCommit(dir, n) {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, account TEXT, recipient TEXT, payload TEXT, message_id TEXT UNIQUE, state TEXT, created_at INTEGER)');
  const ins = db.prepare('INSERT INTO t (account, recipient, payload, message_id, state, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const tx = db.transaction((i) => ins.run('bench', '15550009999@s.whatsapp.net', JSON.stringify({ text: `raw ${i}` }), `RAW${i}`, 'queued', Date.now()));
  const lat = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    tx.immediate(i);
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  db.close();
  return { n, perSecond: Math.round(n / secs), p50Ms: +percentile(lat, 50).toFixed(3), p99Ms: +percentile(lat, 99).toFixed(3) };
}

function viaDaemon(daemon, n, concurrency) {
  return timedRounds((i) => daemon.client.request('POST', '/v1/messages', { account: 'bench', to: '15550009999', text: `msg ${concurrency}/${i}` }), n, concurrency);
}

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, { pacing: { enabled: false } });
// An account that is not paired: rows are stored and wait, so only the enqueue path is measured.
await daemon.client.request('POST', '/v1/accounts', { id: 'bench', wsUrl: emulator.url });
const rawDir = mkdtempSync(join(daemon.dir, 'raw-'));
await viaDaemon(daemon, 100, 4); // warm-up
const raw = rawSingleCommit(rawDir, n1);
const c1 = await viaDaemon(daemon, n1, 1);
const before32 = (await daemon.client.request('GET', '/v1/status')).body.outbox;
const c32 = await viaDaemon(daemon, n32, 32);
const after32 = (await daemon.client.request('GET', '/v1/status')).body.outbox;
c32.rowsPerCommit = +((after32.rowsCommitted - before32.rowsCommitted) / (after32.commits - before32.commits)).toFixed(2);
rmSync(rawDir, { recursive: true, force: true });
await daemon.stop();
await emulator.stop();

const ratio1 = +(c1.perSecond / raw.perSecond).toFixed(2);
const ratio32 = +(c32.perSecond / raw.perSecond).toFixed(2);
report(
  'enqueue',
  {
    rawBetterSqlite3SingleCommit: raw,
    daemonConcurrency1: c1,
    daemonConcurrency32: c32,
    ratioConcurrency1ToRaw: ratio1,
    ratioConcurrency32ToRawSingleCommit: ratio32,
    goal: { concurrency1ToRaw: 0.8, concurrency32ToRawSingleCommit: 5 },
    met: ratio1 >= 0.8 && ratio32 >= 5,
  },
  `enqueue: raw single-commit ${raw.perSecond}/s; daemon c=1 ${c1.perSecond}/s (${ratio1}x raw, p50 ${c1.p50Ms} ms, p99 ${c1.p99Ms} ms); c=32 ${c32.perSecond}/s (${ratio32}x raw, ${c32.rowsPerCommit} rows per commit, p99 ${c32.p99Ms} ms); goals >= 0.8x and >= 5x: ${ratio1 >= 0.8 && ratio32 >= 5 ? 'met' : 'NOT met'}`,
);
