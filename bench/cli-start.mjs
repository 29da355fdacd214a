// bench/cli-start: how long a client command of the CLI takes, process start to exit, as a script
// or an agent calling it again and again sees it: `--version`, `status --json` against a running
// daemon with one paired account, and `status --json` with no daemon (the unreachable answer).
// 20 rounds each by default (p50, p95 and max; a p95 short of the max needs 20 rounds, a p99 100).
// Usage: node bench/cli-start.mjs [--rounds 20]
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { BIN, addAndPair, percentile, report, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a whole number of at least 1, not "${values.rounds}"`);

/** Runs the CLI once; resolves with the wall time in ms, checking the exit code. */
function timed(args, wantCode) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (code !== wantCode) reject(new Error(`wa-supervisor ${args.join(' ')} exited ${code}, not ${wantCode}: ${err}`));
      else resolve(ms);
    });
  });
}

const emulator = await startEmulator();
const daemon = await startDaemon(emulator);
await addAndPair(daemon, emulator, 'bench', '15550008101');
const cases = [
  { name: 'version', args: ['--version'], code: 0 },
  { name: 'status', args: ['status', '--json', '--socket', daemon.socket], code: 0 },
  { name: 'statusNoDaemon', args: ['status', '--json', '--socket', `${daemon.dir}/none.sock`], code: 69 },
];
const results = {};
try {
  for (const c of cases) {
    const ms = [];
    for (let i = 0; i < rounds; i++) ms.push(await timed(c.args, c.code));
    const round = (v) => Math.round(v * 10) / 10;
    results[c.name] = { command: `wa-supervisor ${c.args.join(' ').replace(daemon.dir, '<dir>')}`, rounds, p50Ms: round(percentile(ms, 50)), p95Ms: round(percentile(ms, 95)), maxMs: round(Math.max(...ms)) };
  }
} finally {
  await daemon.stop();
  await emulator.stop();
}
const r = results;
report(
  'cli-start',
  { rounds, results },
  `CLI start to exit, ${rounds} rounds each: --version p50 ${r.version.p50Ms} ms (max ${r.version.maxMs}); status --json p50 ${r.status.p50Ms} ms (max ${r.status.maxMs}); ` +
    `status with no daemon p50 ${r.statusNoDaemon.p50Ms} ms (max ${r.statusNoDaemon.maxMs})`,
);
