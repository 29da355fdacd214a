// `npm run chaos -- --accounts N --messages M --seconds S [--seed X] [--kill-every S]`: a seeded,
// reproducible soak. The emulator and the daemon run as processes; random faults of every
// recoverable kind hit random accounts at random times; senders go through the socket and the
// CLI (with idempotency keys, retried when the daemon is down); with --kill-every the daemon is
// killed with SIGKILL at random moments and restarted. The world has something to get wrong: an
// operator chat for alerts (a WhatsApp sink on a0), `allowTo` on some accounts, one account in
// shadow mode that peers write to, and senders that also try what the policy must refuse. A 440
// on the shadow account at the end raises an alert the operator must get. Every message at every
// emulator peer is then held against who may see it (scripts/delivery-check.mjs). Ends with one
// JSON line; exit 0 only when nothing was lost, nothing shown twice, no alert reached a peer and
// no policy was broken.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { BIN, pairAccount, percentile, sleep, startDaemon, startEmulator } from '../bench/lib.mjs';
import { ALERT_PREFIX, checkDeliveries, collectReceived } from './delivery-check.mjs';

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

// mulberry32: a small seeded PRNG, so a run can be repeated. The send plan, the faults, the kills
// and the inbound writers each draw from their own stream, so the plan does not depend on how
// the loops interleave.
function seeded(stream) {
  let state = ((Number(values.seed) >>> 0 || 1) + Math.imul(stream, 0x9e3779b9)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = { plan: seeded(0), faults: seeded(1), kills: seeded(2), inbound: seeded(3) };
const pick = (random, list) => list[Math.floor(random() * list.length)];

const phone = (i) => `1555030${String(i).padStart(4, '0')}`;
const peersOf = (i) => [0, 1, 2].map((j) => `1555040${String(i * 10 + j).padStart(4, '0')}`);
const FORBIDDEN_PEER = '15550499999'; // a policy rule refuses it to every account
const INVENTED_PEER = '15550498888'; // nobody's peer: what an agent might make up
const OPERATOR = '15550490000'; // the operator chat: alerts go here and nowhere else
if (N < 2) throw new Error('--accounts must be at least 2 (one account is in shadow mode)');

// The world. a0 carries the alert sink; even accounts (but the last) have allowTo (a0's also
// lists the operator, or its alerts would be refused); the last account is in shadow mode.
const SHADOW = N - 1;
const ids = [...Array(N).keys()];
const hasAllowTo = (i) => i % 2 === 0 && i !== SHADOW;
const allowToOf = (i) => (hasAllowTo(i) ? [...peersOf(i), ...(i === 0 ? [OPERATOR] : [])] : undefined);
const world = {
  accounts: ids.map((i) => ({ id: `a${i}`, phone: phone(i), allowTo: allowToOf(i), shadow: i === SHADOW })),
  operators: [OPERATOR],
  forbidden: [FORBIDDEN_PEER],
};

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {
  keepalive: { intervalMs: 1000, probeDeadlineMs: 700 },
  reconnect: { initialMs: 300, maxMs: 3000 },
  connectTimeoutMs: 6000,
  pacing: { enabled: false },
  operators: [`+${OPERATOR}`],
  alerts: { sinks: [{ type: 'whatsapp', account: 'a0', to: [OPERATOR] }] },
  policy: {
    default: 'allow',
    rules: [
      { action: 'deny', name: 'chaos-forbidden', match: { peer: FORBIDDEN_PEER } },
      { action: 'deny', name: 'shadow-mode', match: { account: `a${SHADOW}`, chatType: 'direct' } },
    ],
  },
  accounts: ids.map((i) => ({ id: `a${i}`, wsUrl: emulator.url, ...(hasAllowTo(i) ? { allowTo: allowToOf(i) } : {}) })),
});
progress(`chaos: ${N} accounts, ${M} messages, ${S} s, seed ${values.seed}${killEvery ? `, kill -9 about every ${killEvery} s` : ''}`);
progress(`  operator ${OPERATOR} (alerts via a0); allowTo on ${ids.filter(hasAllowTo).map((i) => `a${i}`).join(', ')}; a${SHADOW} in shadow mode`);
for (const i of ids) await pairAccount(daemon, emulator, `a${i}`, phone(i));
progress('accounts paired');

const accepted = new Map(); // key -> {account, to, messageId, text}
const gate = { deniedAsExpected: 0, refusedWrongly: 0, acceptedWrongly: 0 };
const attempts = { normal: 0, forbidden: 0, unlisted: 0, shadowReply: 0 };
let viaCli = 0;
let retries = 0;
let inboundToShadow = 0;

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

const writers = ids.filter((i) => i !== SHADOW);
const allowToAccounts = ids.filter(hasAllowTo);
/**
 * Send k of the plan: which account, to whom, and whether the policy must refuse it. Every 20
 * sends, three must be refused (an allowTo account to an unlisted number, a shadow-mode reply
 * through the CLI, a number a rule forbids), so every run tries each kind.
 */
function planSend(k) {
  const random = rnd.plan;
  if (k % 20 === 5) {
    // An invented number, or another account's peer (a real contact, only not this account's).
    const i = pick(random, allowToAccounts);
    return { kind: 'unlisted', i, to: random() < 0.5 ? INVENTED_PEER : pick(random, peersOf((i + 1) % N)), refuse: true };
  }
  if (k % 20 === 10) return { kind: 'shadowReply', i: SHADOW, to: pick(random, peersOf(SHADOW)), refuse: true };
  if (k % 20 === 15) return { kind: 'forbidden', i: pick(random, writers), to: FORBIDDEN_PEER, refuse: true };
  const i = pick(random, writers);
  return { kind: 'normal', i, to: pick(random, peersOf(i)), refuse: false };
}

async function sender() {
  const t0 = Date.now();
  for (let k = 0; k < M; k++) {
    const due = t0 + (k / M) * S * 1000;
    if (Date.now() < due) await sleep(due - Date.now());
    const p = planSend(k);
    attempts[p.kind]++;
    const key = `k-${k}`;
    const text = `m${k}`;
    for (;;) {
      try {
        const r = await sendOnce(key, `a${p.i}`, p.to, text);
        if (r.state === 'denied') {
          if (p.refuse) gate.deniedAsExpected++;
          else gate.refusedWrongly++; // an allowed message refused is a policy bug too
        } else if (p.refuse) gate.acceptedWrongly++; // if it goes out, the checker also sees it at the peer
        else accepted.set(key, { account: `a${p.i}`, to: p.to, messageId: r.messageId, text });
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
    await sleep(500 + rnd.faults() * 2500);
    if (stopFaults) break;
    const i = Math.floor(rnd.faults() * N);
    await emulator.client.injectFault(phone(i), pick(rnd.faults, FAULTS)).catch(() => {});
    faultsInjected++;
  }
}
async function killer() {
  if (!killEvery) return;
  while (!stopFaults) {
    await sleep(killEvery * 1000 * (0.5 + rnd.kills()));
    if (stopFaults) break;
    kills++;
    progress(`  kill -9 #${kills}`);
    await daemon.restart({ kill: true }).catch((err) => progress(`  restart failed: ${err.message}`));
  }
}
// Peers write to the shadow account (it reads, never replies); queued by the emulator while it is down.
async function inbound() {
  let n = 0;
  while (!stopFaults) {
    await sleep(300 + rnd.inbound() * 700);
    if (stopFaults) break;
    await emulator.client
      .inbound({ from: pick(rnd.inbound, peersOf(SHADOW)), to: phone(SHADOW), text: `to the shadow account ${n++}` })
      .then(() => inboundToShadow++)
      .catch(() => {});
  }
}

const faults = faulter();
const killing = killer();
const writing = inbound();
await sender();
stopFaults = true;
await Promise.all([faults, killing, writing]);

// A fault that must raise an alert: the shadow account is replaced by another session (440).
// The conflict alert goes through a0 to the operator; the drain below waits for it.
// A 440 sent into a black hole that is still open is never seen, so try again until the daemon
// reports the conflict.
let conflictSeen = false;
for (let attempt = 0; attempt < 6 && !conflictSeen; attempt++) {
  const conflict = daemon.nextEvent((e) => e.type === 'account.state' && e.account === `a${SHADOW}` && e.state === 'conflict', 8000);
  await emulator.client.injectFault(phone(SHADOW), { kind: 'replace' }).catch((err) => progress(`  440 not injected: ${err.message}`));
  conflictSeen = await conflict.then(
    () => true,
    () => false,
  );
}
progress(`senders done; 440 on the shadow account (${conflictSeen ? 'seen by the daemon' : 'NOT seen by the daemon'}); draining`);

const acceptedList = [...accepted.values()];
const knownPeers = [...new Set([...ids.flatMap((i) => peersOf(i)), FORBIDDEN_PEER, INVENTED_PEER, OPERATOR])];
const conflictAlertAt = (received) => (received[OPERATOR] ?? []).some((m) => (m.text ?? '').startsWith(ALERT_PREFIX) && (m.text ?? '').includes(`account a${SHADOW} was replaced`));
const deadline = Date.now() + 120_000;
let received;
let check;
for (;;) {
  received = await collectReceived(emulator.client, knownPeers);
  check = checkDeliveries(world, acceptedList, received);
  if ((check.lost === 0 && conflictAlertAt(received)) || Date.now() > deadline) break;
  await sleep(1000);
}
const alertsList = (await daemon.client.request('GET', '/v1/alerts')).body;
const alertsRaised = alertsList.recent.filter((n) => n.type === 'alert').map((n) => `${n.alert.code}${n.alert.account ? `(${n.alert.account})` : ''}`);

// Recovery: close -> next open per account, from the daemon's own events (the final 440 is not a recovery).
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

for (const f of check.findings.slice(0, 20)) progress(`  ${f.kind}: at ${f.peer} from ${f.from} id ${f.id} "${f.text}": ${f.reason}`);
const gateMistakes = gate.refusedWrongly + gate.acceptedWrongly;
const policyViolations = check.policyViolations + gateMistakes;
const result = {
  accounts: N,
  sent: check.sent,
  delivered: check.delivered,
  lost: check.lost,
  peerDuplicates: check.peerDuplicates,
  wireDuplicates: check.wireDuplicates,
  alertsToPeers: check.alertsToPeers,
  policyViolations,
  maxRecoveryMs: recoveries.length ? Math.max(...recoveries) : 0,
  p99RecoveryMs: recoveries.length ? percentile(recoveries, 99) : 0,
  seed: Number(values.seed),
  seconds: S,
  faultsInjected,
  kills,
  deniedAsExpected: gate.deniedAsExpected,
  sentViaCli: viaCli,
  clientRetries: retries,
  world: {
    operators: world.operators.length,
    alertSinkAccount: 'a0',
    allowToAccounts: allowToAccounts.map((i) => `a${i}`),
    shadowAccounts: [`a${SHADOW}`],
    forbiddenNumbers: world.forbidden.length,
  },
  attempts,
  inboundToShadow,
  peersChecked: Object.keys(received).length,
  alertsRaised,
  alertsToOperators: check.alertsToOperators,
  policyViolationsAtPeers: check.policyViolations,
  unexpectedAtPeers: check.unexpected,
  refusedWrongly: gate.refusedWrongly,
  acceptedWrongly: gate.acceptedWrongly,
};
progress(
  `chaos: sent ${result.sent}, delivered ${result.delivered}, lost ${result.lost}; ` +
    `shown twice at a peer (same message, new id) ${result.peerDuplicates}; same-id wire copies ${result.wireDuplicates} (shown once: assumed of WhatsApp clients, see README); ` +
    `alerts raised ${alertsRaised.length}, at the operator ${result.alertsToOperators}, at anyone else ${result.alertsToPeers}; ` +
    `refused as expected ${result.deniedAsExpected}, policy violations ${policyViolations}, unexpected at peers ${check.unexpected}`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exitCode = check.lost === 0 && check.peerDuplicates === 0 && check.alertsToPeers === 0 && policyViolations === 0 && check.unexpected === 0 ? 0 : 1;
