// bench/accounts: the daemon's resident memory and idle CPU with 1, 10, 50 and 100 connected,
// idle accounts (keepalive running, default settings), the emulator in another process.
// Usage: node bench/accounts.mjs [--counts 1,10,50,100] [--idle-seconds 20]
import { parseArgs } from 'node:util';
import { addAndPair, cpuSeconds, report, rssBytes, sleep, startDaemon, startEmulator } from './lib.mjs';

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
await emulator.stop();

const first = points[0];
const last = points[points.length - 1];
const perAccountMiB = +((last.rssMiB - first.rssMiB) / (last.accounts - first.accounts)).toFixed(3);
report(
  'accounts',
  {
    settings: 'daemon defaults (keepalive every 10 s per account); RSS is the largest sample in the idle window',
    baselineRssMiB: baseline.rssBytes ? +(baseline.rssBytes / 2 ** 20).toFixed(1) : null,
    points,
    perExtraAccountMiB: perAccountMiB,
    goal: { perExtraAccountMiB: 2 },
    met: perAccountMiB <= 2,
  },
  `accounts: ${points.map((p) => `${p.accounts} -> ${p.rssMiB} MiB, ${p.idleCpuPercent} % CPU`).join('; ')}; ${perAccountMiB} MiB per extra account (goal <= 2): ${perAccountMiB <= 2 ? 'met' : 'NOT met'}`,
);
