// bench/accounts: the daemon with many connected, idle accounts (keepalive running, default
// settings), the emulator in another process. At each count: the daemon's RSS and idle CPU,
// keepalive probes missed and `stale` closes, `GET /v1/status` and `GET /v1/accounts` latency
// over the control socket, and the time to add and pair each account added to reach the count.
// Once, at the largest count: a restart (SIGTERM, then kill -9) until every account is `open`
// again, with the probes missed in the reconnect storm. Optionally (--bare; on by default when
// no count is above 100) the same counts of bare Baileys sockets in one process, with Baileys'
// defaults and with the daemon's options.
// Usage: node bench/accounts.mjs [--counts 1,10,50,100] [--idle-seconds 20] [--rounds 1000]
//        [--pair-concurrency 1] [--bare | --no-bare] [--no-restart]
import { spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, addAndPair, cpuSeconds, percentile, report, rssBytes, sleep, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({
  options: {
    counts: { type: 'string', default: '1,10,50,100' },
    'idle-seconds': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '1000' },
    'pair-concurrency': { type: 'string', default: '1' },
    bare: { type: 'boolean' },
    'no-bare': { type: 'boolean' },
    'no-restart': { type: 'boolean' },
  },
});
const counts = values.counts.split(',').map(Number);
if (counts.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= counts[i - 1]))) throw new Error('--counts: increasing positive integers, e.g. 1,100,1000');
const idleMs = Number(values['idle-seconds']) * 1000;
const rounds = Number(values.rounds);
const pairConcurrency = Math.max(1, Number(values['pair-concurrency']));
const largest = counts[counts.length - 1];
// Two bare Baileys processes at every count double the pairing; above 100 sockets that is slow.
const withBare = values['no-bare'] ? false : (values.bare ?? largest <= 100);
const withRestart = !values['no-restart'];

const MiB = (b) => (b === null ? null : +(b / 2 ** 20).toFixed(1));
const ms = (x) => +x.toFixed(2);
const phoneOf = (i) => `1555${String(1000000 + i).padStart(7, '0')}`;
/** Nearest-rank p50/p99 and max of a list of ms; below 100 samples the p99 is the maximum. */
const dist = (xs) => ({ samples: xs.length, mean: ms(xs.reduce((a, b) => a + b, 0) / xs.length), p50: ms(percentile(xs, 50)), p99: ms(percentile(xs, 99)), max: ms(Math.max(...xs)), p99IsMax: xs.length < 100 });
/** CPU % of one core used by each process between two snapshots. */
const snapshot = (pids) => ({ t: performance.now(), cpu: pids.map(cpuSeconds) });
const cpuPercent = (a, b) => a.cpu.map((c, i) => (c === null || b.cpu[i] === null ? null : +(((b.cpu[i] - c) / ((b.t - a.t) / 1000)) * 100).toFixed(1)));

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {});
const pids = () => [daemon.child.pid, emulator.pid];
await sleep(2000);
const baseline = { rssBytes: rssBytes(daemon.child.pid) };

async function accountsList() {
  return (await daemon.client.request('GET', '/v1/accounts')).body.accounts;
}
/** Keepalive figures summed over the accounts (counters of the current connections, since the daemon started). */
function probes(list) {
  let sent = 0;
  let missed = 0;
  let stale = 0;
  for (const a of list) {
    sent += a.keepalive?.probesSent ?? 0;
    missed += a.keepalive?.probesMissed ?? 0;
    stale += a.closesByCode?.stale ?? 0;
  }
  return { probesSent: sent, probesMissed: missed, staleCloses: stale, open: list.filter((a) => a.state === 'open').length };
}
/**
 * One GET over a unix socket, timed twice: until the answer's last byte (what the daemon costs a
 * client, as curl measures it), and with the client's JSON.parse of it after (a 1 MB answer takes
 * this client several milliseconds to parse, whatever served it).
 */
function timedGet(socketPath, path) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ socketPath, path, method: 'GET', headers: { 'x-wa-client': 'bench' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const lastByteMs = performance.now() - t0;
        if (res.statusCode !== 200) return reject(new Error(`GET ${path}: ${res.statusCode}`));
        const text = Buffer.concat(chunks).toString();
        const body = JSON.parse(text);
        resolve({ lastByteMs, withParseMs: performance.now() - t0, body, bytes: Buffer.byteLength(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
/** `rounds` GET requests, one at a time. */
async function roundTrips(socketPath, path) {
  const lastByte = [];
  const withParse = [];
  let body;
  let bytes;
  for (let i = 0; i < rounds; i++) {
    const r = await timedGet(socketPath, path);
    lastByte.push(r.lastByteMs);
    withParse.push(r.withParseMs);
    body ??= r.body;
    bytes ??= r.bytes;
  }
  return { lastByte, withParse, body, bytes };
}
/**
 * The latency of a route, and beside it the floor for its answer: the same bytes served by a bare
 * node:http server on a unix socket in this process, fetched the same way. What is left between
 * the two is the daemon's own work.
 */
async function latency(path) {
  const measured = await roundTrips(daemon.socket, path);
  const bytes = Buffer.from(`${JSON.stringify(measured.body)}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'wab-floor-'));
  const socket = join(dir, 'floor.sock');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise((r) => server.listen(socket, r));
  try {
    const floor = await roundTrips(socket, path);
    return {
      ...dist(measured.lastByte),
      rounds,
      responseBytes: measured.bytes,
      withClientParse: dist(measured.withParse),
      bareServerSameBytes: { ...dist(floor.lastByte), withClientParse: dist(floor.withParse) },
    };
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const points = [];
let paired = 0;
for (const n of counts) {
  // Add and pair the accounts up to n, `pairConcurrency` at a time; each account's time runs from
  // its POST /v1/accounts to its `open` event.
  const pairMs = [];
  const s0 = snapshot(pids());
  const tPair = performance.now();
  const next = () => (paired < n ? ++paired : null);
  await Promise.all(
    Array.from({ length: Math.min(pairConcurrency, n - paired) }, async () => {
      for (let i = next(); i !== null; i = next()) {
        const t0 = performance.now();
        await addAndPair(daemon, emulator, `a${i}`, phoneOf(i));
        pairMs.push(performance.now() - t0);
        if (i % 100 === 0) process.stderr.write(`  paired ${i}\n`);
      }
    }),
  );
  const pairWallMs = performance.now() - tPair;
  const [pairDaemonCpu, pairEmulatorCpu] = cpuPercent(s0, snapshot(pids()));

  // Let pairing work settle, then measure an idle window (keepalives keep flowing).
  await sleep(3000);
  const before = probes(await accountsList());
  const staleEvents0 = daemon.events.filter((e) => e.type === 'account.stale').length;
  const i0 = snapshot(pids());
  const rssSamples = [];
  const emuRss = [];
  while (performance.now() - i0.t < idleMs) {
    await sleep(1000);
    rssSamples.push(rssBytes(daemon.child.pid));
    emuRss.push(rssBytes(emulator.pid));
  }
  const [cpuPct, emuCpuPct] = cpuPercent(i0, snapshot(pids()));
  const after = probes(await accountsList());
  const rss = Math.max(...rssSamples);

  // Control-socket latency, after the idle window so it does not count in the idle CPU.
  const statusMs = await latency('/v1/status');
  const accountsMs = await latency('/v1/accounts');
  const point = {
    accounts: n,
    open: after.open,
    rssMiB: MiB(rss),
    idleCpuPercent: cpuPct,
    idleWindowSeconds: idleMs / 1000,
    keepalive: {
      probesSent: after.probesSent,
      probesMissed: after.probesMissed,
      staleCloses: after.staleCloses,
      inIdleWindow: { probesSent: after.probesSent - before.probesSent, probesMissed: after.probesMissed - before.probesMissed, staleEvents: daemon.events.filter((e) => e.type === 'account.stale').length - staleEvents0 },
    },
    statusLatencyMs: statusMs,
    accountsLatencyMs: accountsMs,
    pairing: {
      added: pairMs.length,
      concurrency: pairConcurrency,
      perAccountMs: pairMs.length ? dist(pairMs) : null,
      // The last 100 added (in the order they finished), to see whether pairing slows as accounts are added.
      lastHundredMs: pairMs.length > 100 ? dist(pairMs.slice(-100)) : null,
      wallSeconds: +(pairWallMs / 1000).toFixed(1),
      daemonCpuPercent: pairDaemonCpu,
      emulatorCpuPercent: pairEmulatorCpu,
    },
    emulator: { rssMiB: MiB(Math.max(...emuRss)), idleCpuPercent: emuCpuPct },
  };
  points.push(point);
  const p = point.pairing.perAccountMs;
  process.stderr.write(
    `${n} accounts: ${after.open} open, RSS ${point.rssMiB} MiB, idle CPU ${cpuPct} % (emulator ${emuCpuPct} %), probes missed ${after.probesMissed} of ${after.probesSent}, ${after.staleCloses} stale closes; ` +
      `to the last byte: GET /v1/status p50 ${statusMs.p50} / p99 ${statusMs.p99} ms, GET /v1/accounts p50 ${accountsMs.p50} / p99 ${accountsMs.p99} ms (${rounds} rounds each; ` +
      `the same ${Math.round(statusMs.responseBytes / 1024)} KiB from a bare HTTP server p50 ${statusMs.bareServerSameBytes.p50} / p99 ${statusMs.bareServerSameBytes.p99} ms; ` +
      `with the client's JSON.parse: status p99 ${statusMs.withClientParse.p99} ms, bare ${statusMs.bareServerSameBytes.withClientParse.p99} ms); ` +
      (p ? `pairing ${pairMs.length} accounts: mean ${p.mean} ms, p99 ${p.p99} ms${p.p99IsMax ? ' (the max)' : ''}, ${point.pairing.wallSeconds} s wall, daemon ${pairDaemonCpu} % / emulator ${pairEmulatorCpu} % CPU\n` : 'no accounts added\n'),
  );
}

// Restart storm at the largest count: from the signal until every account is `open` again.
async function restartStorm(kill) {
  const s0 = snapshot(pids());
  const { exitedMs, readyMs } = await daemon.restart({ kill });
  let allOpenMs = null;
  let list;
  for (;;) {
    list = await accountsList();
    const open = list.filter((a) => a.state === 'open').length;
    const t = performance.now() - s0.t;
    if (open === largest) {
      allOpenMs = t;
      break;
    }
    if (t > 300_000) break;
    // Each look is the whole list (~1 KB per account): above 1,000 accounts, once a second.
    await sleep(largest > 1000 ? 1000 : 250);
  }
  const s1 = snapshot(pids());
  const atOpen = probes(list);
  // Probes sent in the storm whose deadline had not passed yet: one interval and deadline later.
  await sleep(13_000);
  const settled = probes(await accountsList());
  // The daemon's CPU is the new process's own (from its start); the emulator's between snapshots.
  const daemonCpu = +((s1.cpu[0] / ((s1.t - s0.t) / 1000)) * 100).toFixed(1);
  const [, emulatorCpu] = cpuPercent(s0, s1);
  const r = {
    signal: kill ? 'SIGKILL' : 'SIGTERM',
    exitedMs: Math.round(exitedMs),
    answeringMs: Math.round(readyMs),
    allOpenMs: allOpenMs === null ? null : Math.round(allOpenMs),
    openAtEnd: atOpen.open,
    probesMissedAtAllOpen: atOpen.probesMissed,
    staleClosesAtAllOpen: atOpen.staleCloses,
    probesSentAfterSettle: settled.probesSent,
    probesMissedAfterSettle: settled.probesMissed,
    staleClosesAfterSettle: settled.staleCloses,
    daemonCpuPercent: daemonCpu,
    emulatorCpuPercent: emulatorCpu,
    rssAfterMiB: MiB(rssBytes(daemon.child.pid)),
  };
  process.stderr.write(
    `restart (${r.signal}) with ${largest} accounts: old process gone after ${r.exitedMs} ms, new one answering at ${r.answeringMs} ms, all open at ${r.allOpenMs === null ? `never (${atOpen.open} after 300 s)` : `${(r.allOpenMs / 1000).toFixed(1)} s`}; ` +
      `probes missed ${r.probesMissedAtAllOpen} (${r.probesMissedAfterSettle} of ${r.probesSentAfterSettle} 13 s later), stale closes ${r.staleClosesAfterSettle}; daemon ${daemonCpu} % / emulator ${emulatorCpu} % CPU in the storm\n`,
  );
  return r;
}
const restart = withRestart ? { accounts: largest, sigterm: await restartStorm(false), sigkill: await restartStorm(true) } : null;
await daemon.stop();

// Baselines: the same counts of bare Baileys sockets in one process, paired the same way; once
// with Baileys' defaults and multi-file auth, once with the daemon's options and a SQLite auth
// state (bench/bare-baileys-many.mjs), so the difference can be told apart from the options.
async function measureBare(mode, phoneBase) {
  const authDir = mkdtempSync(join(tmpdir(), 'bare-many-'));
  const bare = spawn(process.execPath, ['--import', emulator.preload, join(ROOT, 'bench', 'bare-baileys-many.mjs'), emulator.url, authDir, mode], {
    env: { ...process.env, WA_EMULATOR_ROOT: emulator.rootPublicKey },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const bareWaiters = [];
  let bareBuf = '';
  bare.stdout.on('data', (d) => {
    bareBuf += d;
    let nl;
    while ((nl = bareBuf.indexOf('\n')) >= 0) {
      const e = JSON.parse(bareBuf.slice(0, nl));
      bareBuf = bareBuf.slice(nl + 1);
      if (e.type === 'qr') emulator.client.pair({ phone: e.phone, qr: e.qr }).catch(() => {});
      for (const w of bareWaiters.splice(0)) (w.pred(e) ? w.resolve(e) : bareWaiters.push(w));
    }
  });
  const bareNext = (pred) => new Promise((resolve) => bareWaiters.push({ pred, resolve }));
  await bareNext((e) => e.type === 'ready');
  const barePoints = [];
  let bareCount = 0;
  for (const n of counts) {
    while (bareCount < n) {
      bareCount++;
      const opened = bareNext((e) => e.type === 'open' && e.count === bareCount);
      bare.stdin.write(`add 1555${String(phoneBase + bareCount).padStart(7, '0')}\n`);
      await opened;
    }
    await sleep(3000);
    const samples = [];
    const cpu0 = cpuSeconds(bare.pid);
    const t0 = Date.now();
    while (Date.now() - t0 < Math.min(idleMs, 10_000)) {
      await sleep(1000);
      samples.push(rssBytes(bare.pid));
    }
    const cpuPct = cpu0 === null ? null : ((cpuSeconds(bare.pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
    barePoints.push({ sockets: n, rssMiB: +(Math.max(...samples) / 2 ** 20).toFixed(1), idleCpuPercent: cpuPct === null ? null : +cpuPct.toFixed(2) });
    process.stderr.write(`bare Baileys (${mode}), ${n} sockets: RSS ${barePoints[barePoints.length - 1].rssMiB} MiB, idle CPU ${cpuPct?.toFixed(2)} %\n`);
  }
  bare.kill('SIGKILL');
  rmSync(authDir, { recursive: true, force: true });
  const f = barePoints[0];
  const l = barePoints[barePoints.length - 1];
  return { points: barePoints, perExtraSocketMiB: l.sockets === f.sockets ? null : +((l.rssMiB - f.rssMiB) / (l.sockets - f.sockets)).toFixed(3) };
}
const bareDefaults = withBare ? await measureBare('defaults', 2000000) : null;
const bareLike = withBare ? await measureBare('like-daemon', 3000000) : null;
// The emulator delays every frame it sends (a realistic default); the figures depend on it.
const emulatorLatencyMs = await emulator.client.latency().catch(() => null);
await emulator.stop();

// Goals, each checked only where its count was measured.
const at = (n) => points.find((p) => p.accounts === n);
const goals = [];
const goal = (name, ok, detail) => goals.push({ goal: name, met: ok, measured: detail });
const first = points[0];
const last = points[points.length - 1];
const perAccountMiB = last.accounts === first.accounts ? null : +((last.rssMiB - first.rssMiB) / (last.accounts - first.accounts)).toFixed(3);
if (perAccountMiB !== null) goal('<= 2 MiB RSS per extra account', perAccountMiB <= 2, `${perAccountMiB} MiB`);
if (at(100)) {
  const p = at(100);
  goal('at 100: GET /v1/status and GET /v1/accounts p99 <= 5 ms', p.statusLatencyMs.p99 <= 5 && p.accountsLatencyMs.p99 <= 5, `${p.statusLatencyMs.p99} / ${p.accountsLatencyMs.p99} ms`);
}
if (at(1000)) {
  const p = at(1000);
  goal('at 1,000: RSS < 500 MiB', p.rssMiB < 500, `${p.rssMiB} MiB`);
  goal('at 1,000: idle CPU < 20 % of one core', p.idleCpuPercent !== null && p.idleCpuPercent < 20, `${p.idleCpuPercent} %`);
  goal('at 1,000: GET /v1/status and GET /v1/accounts p99 <= 20 ms', p.statusLatencyMs.p99 <= 20 && p.accountsLatencyMs.p99 <= 20, `${p.statusLatencyMs.p99} / ${p.accountsLatencyMs.p99} ms`);
}
if (restart && largest >= 1000) {
  // Set for 1,000 accounts; with more, a met goal still holds, a miss is not conclusive.
  const worst = Math.max(restart.sigterm.allOpenMs ?? Infinity, restart.sigkill.allOpenMs ?? Infinity);
  const allOpen = (r) => (r.allOpenMs === null ? `not all (${r.openAtEnd} after 300 s)` : `${(r.allOpenMs / 1000).toFixed(1)} s`);
  goal(`all open within 60 s of a restart (SIGTERM and kill -9; set for 1,000, run at ${largest})`, worst <= 60_000, `${allOpen(restart.sigterm)} / ${allOpen(restart.sigkill)}`);
}
if (at(5000)) {
  const p = at(5000);
  goal('at 5,000: RSS < 2 GB', p.rssMiB < 2048, `${p.rssMiB} MiB`);
  goal('at 5,000: every keepalive probe answered', p.keepalive.probesMissed === 0 && p.keepalive.staleCloses === 0, `${p.keepalive.probesMissed} missed, ${p.keepalive.staleCloses} stale closes`);
}
const met = goals.every((g) => g.met);

const line = (p) => {
  const pr = p.pairing.perAccountMs;
  return (
    `  ${p.accounts} accounts (${p.open} open): RSS ${p.rssMiB} MiB, idle CPU ${p.idleCpuPercent} % over ${p.idleWindowSeconds} s, probes missed ${p.keepalive.probesMissed} of ${p.keepalive.probesSent}, ${p.keepalive.staleCloses} stale closes; ` +
    `to the last byte status p50 ${p.statusLatencyMs.p50} / p99 ${p.statusLatencyMs.p99} ms, accounts p50 ${p.accountsLatencyMs.p50} / p99 ${p.accountsLatencyMs.p99} ms (${rounds} rounds each; ` +
    `status's ${Math.round(p.statusLatencyMs.responseBytes / 1024)} KiB from a bare HTTP server p99 ${p.statusLatencyMs.bareServerSameBytes.p99} ms; with the client's JSON.parse status p99 ${p.statusLatencyMs.withClientParse.p99} ms, bare ${p.statusLatencyMs.bareServerSameBytes.withClientParse.p99} ms); ` +
    (pr ? `pairing the ${pr.samples} added: mean ${pr.mean} ms, ${pr.p99IsMax ? 'max' : 'p99'} ${pr.p99} ms` : 'none added')
  );
};
const restartLine = (r) =>
  `  restart ${r.signal} at ${largest}: ${r.allOpenMs === null ? `${r.openAtEnd} open after 300 s, not all` : `all open after ${(r.allOpenMs / 1000).toFixed(1)} s`} (answering at ${(r.answeringMs / 1000).toFixed(1)} s), probes missed ${r.probesMissedAfterSettle} of ${r.probesSentAfterSettle}, ${r.staleClosesAfterSettle} stale closes, RSS ${r.rssAfterMiB} MiB 13 s after ${r.allOpenMs === null ? 'that' : 'all were open'}`;
report(
  'accounts',
  {
    settings: `daemon defaults (keepalive every 10 s per account, 3 s deadline); RSS is the largest sample in the ${idleMs / 1000} s idle window; latency is ${rounds} sequential requests per route over the control socket, nearest-rank percentiles, from sending the request to the answer's last byte (withClientParse: and the bench client's JSON.parse of it); pairing ${pairConcurrency} at a time`,
    emulatorLatencyMs,
    baselineRssMiB: MiB(baseline.rssBytes),
    points,
    perExtraAccountMiB: perAccountMiB,
    restart,
    bareBaileys: bareDefaults && { settings: 'Baileys defaults (full history sync accepted, marked online), one process, multi-file auth', ...bareDefaults },
    bareBaileysLikeDaemon: bareLike && {
      settings: "the daemon's makeWASocket options (history declined, not marked online, same browser, keepalive, timeouts), one process, creds and keys in one SQLite database",
      ...bareLike,
    },
    goal: { perExtraAccountMiB: 2, at100: { listP99Ms: 5 }, at1000: { rssMiB: 500, idleCpuPercent: 20, listP99Ms: 20, restartAllOpenMs: 60_000 }, at5000: { rssMiB: 2048, probesMissed: 0 } },
    goals,
    met,
  },
  [
    `accounts: ${points.length} counts, goals ${met ? 'met' : 'NOT all met'}`,
    ...points.map(line),
    ...(restart ? [restartLine(restart.sigterm), restartLine(restart.sigkill)] : []),
    ...goals.map((g) => `  goal ${g.goal}: ${g.measured} -> ${g.met ? 'met' : 'NOT met'}`),
    bareDefaults ? `  bare Baileys ${bareDefaults.perExtraSocketMiB} MiB per extra socket with its defaults, ${bareLike.perExtraSocketMiB} MiB with the daemon's options` : '  bare Baileys: not measured (--bare)',
  ].join('\n'),
);
