// bench/accounts: the daemon's resident memory and idle CPU with 1, 10, 50 and 100 connected,
// idle accounts (keepalive running, default settings), the emulator in another process; beside
// it the same counts of bare Baileys sockets, with Baileys' defaults and with the daemon's options.
// Usage: node bench/accounts.mjs [--counts 1,10,50,100] [--idle-seconds 20]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, addAndPair, cpuSeconds, report, rssBytes, sleep, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({ options: { counts: { type: 'string', default: '1,10,50,100' }, 'idle-seconds': { type: 'string', default: '20' } } });
const counts = values.counts.split(',').map(Number);
const idleMs = Number(values['idle-seconds']) * 1000;

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {});
const pid = daemon.child.pid;
await sleep(2000);
const baseline = { rssBytes: rssBytes(pid) };
const points = [];
let paired = 0;
for (const n of counts) {
  while (paired < n) {
    paired++;
    await addAndPair(daemon, emulator, `a${paired}`, `1555${String(1000000 + paired).padStart(7, '0')}`);
  }
  // Let pairing work settle, then measure an idle window (keepalives keep flowing).
  await sleep(3000);
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  const rssSamples = [];
  while (Date.now() - t0 < idleMs) {
    await sleep(1000);
    rssSamples.push(rssBytes(pid));
  }
  const cpuPct = cpu0 === null ? null : ((cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
  const rss = Math.max(...rssSamples);
  const status = (await daemon.client.request('GET', '/v1/status')).body;
  const open = status.accounts.filter((a) => a.state === 'open').length;
  points.push({ accounts: n, open, rssMiB: +(rss / 2 ** 20).toFixed(1), idleCpuPercent: cpuPct === null ? null : +cpuPct.toFixed(2) });
  process.stderr.write(`${n} accounts: ${open} open, RSS ${(rss / 2 ** 20).toFixed(1)} MiB, idle CPU ${cpuPct?.toFixed(2)} %\n`);
}
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
  return { points: barePoints, perExtraSocketMiB: +((l.rssMiB - f.rssMiB) / (l.sockets - f.sockets)).toFixed(3) };
}
const bareDefaults = await measureBare('defaults', 2000000);
const bareLike = await measureBare('like-daemon', 3000000);
// The emulator delays every frame it sends (a realistic default); the figures depend on it.
const emulatorLatencyMs = await emulator.client.latency().catch(() => null);
await emulator.stop();

const first = points[0];
const last = points[points.length - 1];
const perAccountMiB = +((last.rssMiB - first.rssMiB) / (last.accounts - first.accounts)).toFixed(3);
report(
  'accounts',
  {
    settings: 'daemon defaults (keepalive every 10 s per account); RSS is the largest sample in the idle window',
    emulatorLatencyMs,
    baselineRssMiB: baseline.rssBytes ? +(baseline.rssBytes / 2 ** 20).toFixed(1) : null,
    points,
    perExtraAccountMiB: perAccountMiB,
    bareBaileys: { settings: 'Baileys defaults (full history sync accepted, marked online), one process, multi-file auth', ...bareDefaults },
    bareBaileysLikeDaemon: {
      settings: "the daemon's makeWASocket options (history declined, not marked online, same browser, keepalive, timeouts), one process, creds and keys in one SQLite database",
      ...bareLike,
    },
    goal: { perExtraAccountMiB: 2 },
    met: perAccountMiB <= 2,
  },
  `accounts: ${points.map((p) => `${p.accounts} -> ${p.rssMiB} MiB, ${p.idleCpuPercent} % CPU`).join('; ')}; ${perAccountMiB} MiB per extra account (goal <= 2): ${perAccountMiB <= 2 ? 'met' : 'NOT met'}; bare Baileys ${bareDefaults.perExtraSocketMiB} MiB per extra socket with its defaults, ${bareLike.perExtraSocketMiB} MiB with the daemon's options`,
);
