// `npm run chaos -- --accounts N --messages M --seconds S [--seed X] [--kill-every S]`: a seeded,
// reproducible soak. The emulator and the daemon run as processes; random faults of every
// recoverable kind hit random accounts at random times; senders go through the socket and the
// CLI (with idempotency keys, retried when the daemon is down); with --kill-every the daemon is
// killed with SIGKILL at random moments and restarted. Ends with one JSON line; exit 0 only when
// nothing was lost, nothing shown twice, no alert reached a peer and no policy was broken.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BIN, addAndPair, percentile, sleep, startDaemon, startEmulator } from '../bench/lib.mjs';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '3' },
    messages: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    'kill-every': { type: 'string' },
  },
});
const N = Number(values.accounts);
const M = Number(values.messages);
const S = Number(values.seconds);
const killEvery = values['kill-every'] ? Number(values['kill-every']) : 0;
const progress = (line) => process.stderr.write(`${line}\n`);

// mulberry32: a small seeded PRNG, so a run can be repeated exactly.
let state = Number(values.seed) >>> 0 || 1;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (list) => list[Math.floor(random() * list.length)];

const phone = (i) => `1555030${String(i).padStart(4, '0')}`;
const peersOf = (i) => [0, 1, 2].map((j) => `1555040${String(i * 10 + j).padStart(4, '0')}`);
const FORBIDDEN_PEER = '15550499999'; // on nobody's allowTo: every message to it must be denied

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {
  keepalive: { intervalMs: 1000, probeDeadlineMs: 700 },
  reconnect: { initialMs: 300, maxMs: 3000 },
  connectTimeoutMs: 6000,
  pacing: { enabled: false },
  accounts: [],
});
progress(`chaos: ${N} accounts, ${M} messages, ${S} s, seed ${values.seed}${killEvery ? `, kill -9 about every ${killEvery} s` : ''}`);
for (let i = 0; i < N; i++) await addAndPair(daemon, emulator, `a${i}`, phone(i));
progress('accounts paired');

const accepted = new Map(); // key -> {account, to, messageId}
let deniedOk = 0;
let policyViolations = 0;
let viaCli = 0;
let retries = 0;

async function sendOnce(key, account, to, text) {
  if (Number(key.split('-')[1]) % 10 === 0) {
    viaCli++;
    const out = await new Promise((resolve) => {
      const c = spawn(process.execPath, [BIN, 'send', '--account', account, '--to', to, '--text', text, '--idempotency-key', key, '--json', '--socket', `${daemon.dir}/d.sock`], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let s = '';
      c.stdout.on('data', (d) => (s += d));
      c.on('close', (code) => resolve(code === 0 ? s : null));
    });
    if (!out) throw new Error('cli send failed');
    return JSON.parse(out);
  }
  return (await daemon.client.request('POST', '/v1/messages', { account, to, text, idempotencyKey: key })).body;
}

async function sender() {
  const t0 = Date.now();
  for (let k = 0; k < M; k++) {
    const due = t0 + (k / M) * S * 1000;
    if (Date.now() < due) await sleep(due - Date.now());
    const i = Math.floor(random() * N);
    const toForbidden = random() < 0.03;
    const to = toForbidden ? FORBIDDEN_PEER : pick(peersOf(i));
    const key = `k-${k}`;
    for (;;) {
      try {
        const r = await sendOnce(key, `a${i}`, to, `m${k}`);
        if (r.state === 'denied') {
          if (toForbidden) deniedOk++;
          else policyViolations++; // an allowed message refused is a policy bug too
        } else if (toForbidden) policyViolations++;
        else accepted.set(key, { account: `a${i}`, to, messageId: r.messageId });
        break;
      } catch {
        retries++;
        await sleep(200);
      }
    }
    if (k % Math.max(1, Math.floor(M / 10)) === 0) progress(`  ${k}/${M} sent`);
  }
}

const FAULTS = [
  { kind: 'close' },
  { kind: 'terminate' },
  { kind: 'xmlstreamend' },
  { kind: 'stream-error', code: 503 },
  { kind: 'stream-error', code: 500 },
  { kind: 'stream-error', code: 515 },
  { kind: 'app-silent', ms: 4000 },
  { kind: 'black-hole', ms: 4000 },
];
let faultsInjected = 0;
let kills = 0;
let stopFaults = false;
async function faulter() {
  while (!stopFaults) {
    await sleep(500 + random() * 2500);
    if (stopFaults) break;
    const i = Math.floor(random() * N);
    await emulator.client.injectFault(phone(i), pick(FAULTS)).catch(() => {});
    faultsInjected++;
  }
}
async function killer() {
  if (!killEvery) return;
  while (!stopFaults) {
    await sleep(killEvery * 1000 * (0.5 + random()));
    if (stopFaults) break;
    kills++;
    progress(`  kill -9 #${kills}`);
    await daemon.restart({ kill: true }).catch((err) => progress(`  restart failed: ${err.message}`));
  }
}

// The gate must refuse the forbidden number: a deny rule in the config, applied at restart.
const cfg = JSON.parse(readFileSync(daemon.configFile, 'utf8'));
cfg.policy = { default: 'allow', rules: [{ action: 'deny', name: 'chaos-forbidden', match: { peer: FORBIDDEN_PEER } }] };
writeFileSync(daemon.configFile, JSON.stringify(cfg));
await daemon.restart();

const faults = faulter();
const killing = killer();
await sender();
stopFaults = true;
await Promise.all([faults, killing]);
progress('senders done; draining');

const allPeers = [...new Set([...Array(N).keys()].flatMap((i) => peersOf(i)))];
const deadline = Date.now() + 120_000;
let atPeers = [];
for (;;) {
  atPeers = (await Promise.all(allPeers.map((p) => emulator.client.peerMessages(p)))).flat();
  const seen = new Set(atPeers.map((m) => m.id));
  if ([...accepted.values()].every((a) => seen.has(a.messageId)) || Date.now() > deadline) break;
  await sleep(1000);
}
const seen = new Set(atPeers.map((m) => m.id));
const lost = [...accepted.values()].filter((a) => !seen.has(a.messageId)).length;
const texts = new Map();
for (const m of atPeers) texts.set(m.text, (texts.get(m.text) ?? 0) + 1);
const peerDuplicates = [...texts.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
const wireDuplicates = atPeers.reduce((a, m) => a + m.copies - 1, 0);
const alertsToPeers = atPeers.filter((m) => (m.text ?? '').startsWith('[wa-supervisor]')).length;
const atForbidden = (await emulator.client.peerMessages(FORBIDDEN_PEER)).length;
policyViolations += atForbidden;

// Recovery: close -> next open per account, from the daemon's own events.
const recoveries = [];
const lastClose = new Map();
for (const e of daemon.events) {
  if (e.type === 'account.close' && e.name !== 'local') lastClose.set(e.account, Date.parse(e.at));
  if (e.type === 'account.state' && e.state === 'open' && lastClose.has(e.account)) {
    recoveries.push(Date.parse(e.at) - lastClose.get(e.account));
    lastClose.delete(e.account);
  }
}
await daemon.stop();
await emulator.stop();

const result = {
  accounts: N,
  sent: accepted.size,
  delivered: accepted.size - lost,
  lost,
  peerDuplicates,
  wireDuplicates,
  alertsToPeers,
  policyViolations,
  maxRecoveryMs: recoveries.length ? Math.max(...recoveries) : 0,
  p99RecoveryMs: recoveries.length ? percentile(recoveries, 99) : 0,
  seed: Number(values.seed),
  seconds: S,
  faultsInjected,
  kills,
  deniedAsExpected: deniedOk,
  sentViaCli: viaCli,
  clientRetries: retries,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exitCode = lost === 0 && peerDuplicates === 0 && alertsToPeers === 0 && policyViolations === 0 ? 0 : 1;
