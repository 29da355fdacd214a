// Shared pieces of the benchmarks: the emulator in its own process, the daemon as users run it,
// pairing through the control socket, process measurements, and result files.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../dist/control/client.js';
import { startEmulatorChild } from '../dist/emulator/child.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'wa-supervisor.js');
/** Extra Node.js flags for the daemon, e.g. BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" to profile it. */
const DAEMON_NODE_ARGS = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** Extra Node.js flags for the emulator child, e.g. BENCH_EMULATOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof". */
const EMULATOR_NODE_ARGS = (process.env.BENCH_EMULATOR_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * Starts the emulator in its own process. `mediaCaPem` is the test CA of its HTTPS media server,
 * which startDaemon hands the daemon (as the integration tests do) so media uploads work.
 * `nodeArgs` replaces BENCH_EMULATOR_NODE_ARGS for this process.
 */
export async function startEmulator(args = [], { nodeArgs = EMULATOR_NODE_ARGS } = {}) {
  const emulator = await startEmulatorChild({ args, ...(nodeArgs.length ? { execArgv: nodeArgs } : {}) });
  emulator.mediaCaPem = (await emulator.client.mediaCa()).pem;
  return emulator;
}

/**
 * Starts the daemon with `config` (merged over a temp stateDir and socket); resolves when ready.
 * The handle can restart it on the same state directory (`restart({ kill: true })` is a kill -9).
 * `nodeArgs` replaces BENCH_DAEMON_NODE_ARGS for this process.
 */
export async function startDaemon(emulator, config = {}, { nodeArgs = DAEMON_NODE_ARGS } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wab-'));
  const socket = join(dir, 'd.sock');
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ stateDir: join(dir, 'state'), socket, log: { level: 'warn' }, ...config }));
  const client = new ControlClient({ socket: { path: socket, source: 'flag' }, clientName: 'bench', retryRefusedMs: 5000 });
  const events = [];
  const waiters = new Set();
  let child;
  let output = '';
  let abort = new AbortController();

  const spawnAndWait = async () => {
    child = spawn(process.execPath, [...nodeArgs, '--import', emulator.preload, BIN, 'run', '--config', configFile], {
      env: { ...process.env, WA_EMULATOR_ROOT: emulator.rootPublicKey, ...(emulator.mediaCaPem ? { WA_EMULATOR_MEDIA_CA: emulator.mediaCaPem } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => (output = (output + d).slice(-200_000)));
    child.stderr.on('data', (d) => (output = (output + d).slice(-200_000)));
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await client.request('GET', '/v1/status');
        break;
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`daemon did not start: ${err.message}\n${output}`);
        await sleep(100);
      }
    }
    abort = new AbortController();
    let opened;
    const open = new Promise((r) => (opened = r));
    client
      .stream(
        '/v1/events',
        (e) => {
          events.push(e);
          for (const w of waiters) if (w.pred(e)) (waiters.delete(w), w.resolve(e));
        },
        { signal: abort.signal, onOpen: () => opened() },
      )
      .catch(() => {});
    await open;
  };
  await spawnAndWait();

  return {
    get child() {
      return child;
    },
    client,
    /** The control socket's path. */
    socket,
    events,
    dir,
    configFile,
    output: () => output,
    /** Resolves with the next event matching pred. */
    nextEvent(pred, timeoutMs = 300_000) {
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (e) => (clearTimeout(t), resolve(e)) };
        const t = setTimeout(() => (waiters.delete(w), reject(new Error('timed out waiting for a daemon event'))), timeoutMs);
        waiters.add(w);
      });
    },
    /**
     * Stops the daemon (SIGTERM, or SIGKILL with kill) and starts it again on the same state.
     * Resolves with the ms from the signal to the old process's exit and to the new one answering.
     */
    async restart({ kill = false } = {}) {
      abort.abort();
      const exited = new Promise((r) => child.once('exit', r));
      const t0 = performance.now();
      child.kill(kill ? 'SIGKILL' : 'SIGTERM');
      await exited;
      const exitedMs = performance.now() - t0;
      await spawnAndWait();
      return { exitedMs, readyMs: performance.now() - t0 };
    },
    async stop() {
      abort.abort();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      // A daemon that does not end within 15 s is killed, so a bench never leaves one behind.
      const hard = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(hard);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Adds an account on the emulator and pairs it by QR; resolves when it is open. */
export async function addAndPair(daemon, emulator, id, phone) {
  await daemon.client.request('POST', '/v1/accounts', { id, wsUrl: emulator.url });
  await pairAccount(daemon, emulator, id, phone);
}

/** Pairs an existing account by QR, the emulator scanning as `phone`; `onEvent` sees the pairing events. Resolves when open. */
export async function pairAccount(daemon, emulator, id, phone, onEvent = () => {}) {
  const opened = daemon.nextEvent((e) => e.type === 'account.state' && e.account === id && e.state === 'open', 60_000);
  let scanned = false;
  await daemon.client.stream(
    `/v1/accounts/${id}/pair`,
    (e) => {
      onEvent(e, !scanned);
      if (e.type === 'qr' && !scanned) {
        scanned = true;
        emulator.client.pair({ phone, qr: e.qr }).catch(() => {});
      }
      if (e.type === 'error') throw new Error(`pairing ${id} failed: ${e.message}`);
    },
    { method: 'POST', body: {} },
  );
  await opened;
}

/** Resident set size of a process in bytes (Linux /proc, else ps). */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return null;
}

/** CPU seconds (user + system) a process has used so far (Linux /proc). */
export function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The machine, for result files. */
export function machine() {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform };
}

/**
 * Runs `call` n times, `concurrency` at a time, timing each; resolves to the rate and latency
 * percentiles (nearest rank) with the number of rounds they come from.
 */
export async function timedRounds(call, n, concurrency) {
  const lat = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const s = process.hrtime.bigint();
        await call(i);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { n, concurrency, perSecond: Math.round(n / secs), p50Ms: +percentile(lat, 50).toFixed(3), p99Ms: +percentile(lat, 99).toFixed(3), rounds: lat.length };
}

export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** Writes bench/results/<name>.json and prints the JSON and a readable line. */
export function report(name, result, line) {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const full = { bench: name, date: new Date().toISOString(), machine: machine(), ...result };
  writeFileSync(join(ROOT, 'bench', 'results', `${name}.json`), `${JSON.stringify(full, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(full)}\n${line}\n`);
}
