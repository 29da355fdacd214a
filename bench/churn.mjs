// bench/churn: does the daemon stay as fast after thousands of reconnects as it was at the start?
// Three paired accounts with a fast keepalive; one of them is reconnected again and again through
// the control socket. At each checkpoint (after 0, 1,000 and 5,000 reconnects by default) it
// measures the daemon's idle CPU over a window and the time of a sample of reconnects (command →
// `open` again). Goal: both flat within 1.5× from the first checkpoint to the last.
// Usage: node bench/churn.mjs [--checkpoints 0,1000,5000] [--sample 100] [--idle-seconds 15]
import { parseArgs } from 'node:util';
import { addAndPair, cpuSeconds, percentile, report, rssBytes, sleep, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({
  options: {
    checkpoints: { type: 'string', default: '0,1000,5000' },
    sample: { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '15' },
  },
});
const checkpoints = values.checkpoints.split(',').map(Number);
const sample = Number(values.sample);
const idleMs = Number(values['idle-seconds']) * 1000;
const GOAL = 1.5;

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {
  keepalive: { intervalMs: 200, probeDeadlineMs: 150 },
  pacing: { enabled: false },
});
const pid = daemon.child.pid;
for (let i = 1; i <= 3; i++) await addAndPair(daemon, emulator, `c${i}`, `1555300000${i}`);

/** One operator reconnect of c1, timed from the command to `open` again. */
async function reconnectOnce() {
  const t0 = performance.now();
  const opened = daemon.nextEvent((e) => e.type === 'account.state' && e.account === 'c1' && e.state === 'open', 30_000);
  await daemon.client.request('POST', '/v1/accounts/c1/reconnect');
  await opened;
  return performance.now() - t0;
}

async function idleCpuPercent() {
  await sleep(1000); // let the last reconnect's work settle
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  await sleep(idleMs);
  return ((cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
}

let done = 0;
const points = [];
for (const target of checkpoints) {
  while (done < target) {
    await reconnectOnce();
    done++;
    if (done % 500 === 0) process.stderr.write(`${done} reconnects\n`);
  }
  const idle = await idleCpuPercent();
  const times = [];
  for (let i = 0; i < sample; i++) times.push(await reconnectOnce());
  done += sample;
  const point = {
    reconnectsBefore: target,
    idleCpuPercent: +idle.toFixed(2),
    reconnectMs: {
      rounds: times.length,
      mean: +(times.reduce((a, b) => a + b, 0) / times.length).toFixed(1),
      p50: +percentile(times, 50).toFixed(1),
      p99: +percentile(times, 99).toFixed(1),
    },
    rssMiB: +(rssBytes(pid) / 2 ** 20).toFixed(1),
  };
  points.push(point);
  process.stderr.write(`after ${target}: idle CPU ${point.idleCpuPercent} %, reconnect mean ${point.reconnectMs.mean} ms (p99 ${point.reconnectMs.p99}, ${times.length} rounds), RSS ${point.rssMiB} MiB\n`);
}
const status = (await daemon.client.request('GET', '/v1/status')).body;
await daemon.stop();
await emulator.stop();

const first = points[0];
const last = points[points.length - 1];
// Idle CPU below one percent of a core is noise on a shared machine: compare against that floor.
const cpuGrowth = Math.max(last.idleCpuPercent, 1) / Math.max(first.idleCpuPercent, 1);
const timeGrowth = last.reconnectMs.mean / first.reconnectMs.mean;
const met = cpuGrowth <= GOAL && timeGrowth <= GOAL;
report(
  'churn',
  {
    accounts: 3,
    keepaliveMs: 200,
    totalReconnects: done,
    points,
    cpuGrowth: +cpuGrowth.toFixed(2),
    reconnectTimeGrowth: +timeGrowth.toFixed(2),
    goal: `idle CPU and reconnect time within ${GOAL}x from ${first.reconnectsBefore} to ${last.reconnectsBefore} reconnects`,
    met,
    openAtEnd: status.accounts.filter((a) => a.state === 'open').length,
  },
  `churn: after ${last.reconnectsBefore} reconnects idle CPU ${first.idleCpuPercent} -> ${last.idleCpuPercent} % (${cpuGrowth.toFixed(2)}x), ` +
    `reconnect mean ${first.reconnectMs.mean} -> ${last.reconnectMs.mean} ms (${timeGrowth.toFixed(2)}x, ${last.reconnectMs.rounds} rounds each); goal <= ${GOAL}x ${met ? 'met' : 'NOT met'}`,
);
process.exit(met ? 0 : 1);
