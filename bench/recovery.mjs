// bench/recovery: black-hole an open account and time fault -> open again, for the daemon with
// its default settings and, in the same run against the same emulator, a bare Baileys socket
// with default settings and the README's reconnect-on-close pattern.
// Usage: node bench/recovery.mjs [--trials N] [--bare-trials N]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, addAndPair, percentile, report, sleep, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '5' }, 'bare-trials': { type: 'string', default: '3' } } });
const trials = Number(values.trials);
const bareTrials = Number(values['bare-trials']);
const emulator = await startEmulator();

async function daemonRun() {
  const daemon = await startDaemon(emulator, {});
  const phone = '15550007001';
  await addAndPair(daemon, emulator, 'bench', phone);
  const times = [];
  const timelines = [];
  for (let i = 0; i < trials; i++) {
    // The fault hits a connection that has been working (open at least 12 s), at a random phase
    // against the keepalive timer: faults do not wait for a convenient moment.
    await sleep(12_000 + Math.random() * 10_000);
    const opened = daemon.nextEvent((e) => e.type === 'account.state' && e.account === 'bench' && e.state === 'open');
    const from = daemon.events.length;
    const t0 = Date.now();
    await emulator.client.injectFault(phone, { kind: 'black-hole' });
    await opened;
    times.push(Date.now() - t0);
    timelines.push(daemon.events.slice(from).filter((e) => e.type === 'account.state' || e.type === 'account.close').map((e) => ({ ms: Date.parse(e.at) - t0, type: e.type, state: e.state, name: e.name })));
    process.stderr.write(`daemon trial ${i + 1}: ${times[i]} ms\n`);
  }
  await daemon.stop();
  return { times, timelines };
}

async function bareRun() {
  const authDir = mkdtempSync(join(tmpdir(), 'bare-'));
  const child = spawn(process.execPath, ['--import', emulator.preload, join(ROOT, 'bench', 'bare-baileys.mjs'), emulator.url, authDir], {
    env: { ...process.env, WA_EMULATOR_ROOT: emulator.rootPublicKey },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const phone = '15550007002';
  const waiters = new Set();
  const lines = [];
  let buf = '';
  let scanned = false;
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      lines.push(e);
      if (e.type === 'qr' && !scanned) {
        scanned = true;
        emulator.client.pair({ phone, qr: e.qr }).catch(() => {});
      }
      for (const w of waiters) if (w.pred(e)) (waiters.delete(w), w.resolve(e));
    }
  });
  const next = (pred) => new Promise((resolve) => waiters.add({ pred, resolve }));
  await next((e) => e.type === 'open');
  const times = [];
  const timelines = [];
  for (let i = 0; i < bareTrials; i++) {
    await sleep(12_000 + Math.random() * 10_000);
    const from = lines.length;
    const t0 = Date.now();
    const opened = next((e) => e.type === 'open');
    await emulator.client.injectFault(phone, { kind: 'black-hole' });
    await opened;
    times.push(Date.now() - t0);
    timelines.push(lines.slice(from).map((e) => ({ ms: e.at - t0, type: e.type, code: e.code })));
    process.stderr.write(`bare Baileys trial ${i + 1}: ${times[i]} ms\n`);
  }
  child.kill('SIGKILL');
  rmSync(authDir, { recursive: true, force: true });
  return { times, timelines };
}

const [daemon, bare] = await Promise.all([daemonRun(), bareRun()]);
await emulator.stop();
const summary = (t) => ({ trials: t.length, minMs: Math.min(...t), p50Ms: percentile(t, 50), maxMs: Math.max(...t), meanMs: Math.round(t.reduce((a, b) => a + b, 0) / t.length) });
const d = summary(daemon.times);
const b = summary(bare.times);
report(
  'recovery',
  {
    fault: 'black-hole (TCP stops both ways, socket stays open)',
    daemon: { settings: 'defaults (keepalive 10 s, probe deadline 3 s, backoff 1 s ceiling)', ...d, times: daemon.times, timelines: daemon.timelines },
    bareBaileys: { settings: 'Baileys defaults, README reconnect-on-close', ...b, times: bare.times, timelines: bare.timelines },
    goal: { maxMs: 15_000, ratioToBare: 0.25 },
    ratioMaxToBareMin: Number((d.maxMs / b.minMs).toFixed(3)),
    met: d.maxMs <= 15_000 && d.maxMs <= b.minMs * 0.25,
  },
  `recovery after a black hole: daemon max ${d.maxMs} ms (p50 ${d.p50Ms}) vs bare Baileys min ${b.minMs} ms (p50 ${b.p50Ms}); goal <= 15000 ms and <= 1/4 of bare: ${d.maxMs <= 15_000 && d.maxMs <= b.minMs * 0.25 ? 'met' : 'NOT met'}`,
);
