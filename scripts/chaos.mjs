// `npm run chaos -- --accounts N --messages M --seconds S [--seed X] [--kill-every S] [--two-way] [--hosts H] [--settle-ms MS]`:
// a seeded, reproducible soak. The emulator and the daemon run as processes; random faults of
// every recoverable kind hit random accounts at random times; senders go through the socket and
// the CLI (with idempotency keys, retried when the daemon is down); with --kill-every the daemon
// is killed with SIGKILL at random moments and restarted. The world has something to get wrong:
// an operator chat for alerts (a WhatsApp sink on a0), `allowTo` on some accounts, `allowFrom` on
// a0 (one of those who write to it is a stranger), one account in shadow mode, and senders that
// also try what the policy must refuse. People write to every account throughout, through the
// faults and the kills (with --two-way, the very peers it writes to); a stream consumer reads the
// inbox, acknowledging as it goes, and is cut off at random points and reconnects. A 440 on the
// shadow account at the end raises an alert the operator must get. Every message at every
// emulator peer is then held against who may see it, and everything sent to the accounts against
// the inbox and the consumer's deliveries (scripts/delivery-check.mjs). Ends with one JSON line;
// exit 0 only when nothing was lost, nothing shown twice, no alert reached a peer, no policy was
// broken, every message sent to an account is in its inbox once, and the consumer was handed
// every readable row, none again after its acknowledgement.
//
// With --hosts H (H > 1) the daemon is a cluster of H daemons sharing a throwaway PostgreSQL server
// (docs/cluster.md): senders go through a random live daemon, --kill-every kills a random one, and
// the run also counts double ownership: an account running on two daemons at once (from every
// daemon's own account.state events, a killed daemon's ending at its kill) and 440 closes any
// daemon saw (other than the final one the run injects). The inbox is shared: it is read through
// one live daemon, and the stream consumer reads through a random live daemon on each connection
// (a killed daemon's reader reconnects to another), acknowledging through the daemon it reads from.
import { spawn } from 'node:child_process';
import { startPostgres } from './postgres-server.mjs';
import { parseArgs } from 'node:util';
import { BIN, pairAccount, percentile, sleep, startDaemon, startEmulator } from '../bench/lib.mjs';
import { DEFAULT_SETTLE_MS } from '../dist/config/gate-settings.js';
import { ALERT_PREFIX, checkDeliveries, checkInbox, checkOwnership, collectInbox, collectReceived, collectSent } from './delivery-check.mjs';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '3' },
    messages: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    'kill-every': { type: 'string' },
    // The peers an account writes to also write to it (by default others do). The emulator's
    // phones cannot yet recover when such a message crosses the new Signal session Baileys starts
    // after a reconnect: they fail to decrypt what follows and send no retry receipt, so some
    // sends are lost at the peer (reported as lostPeerCouldNotDecrypt).
    'two-way': { type: 'boolean', default: false },
    hosts: { type: 'string', default: '1' },
    // The outbox settle window (outbox.settleMs); the daemon's default (10 s) when not given.
    'settle-ms': { type: 'string' },
  },
});
const HOSTS = Number(values.hosts);
if (!Number.isInteger(HOSTS) || HOSTS < 1 || HOSTS > 9) throw new Error('--hosts must be 1-9');
const N = Number(values.accounts);
const M = Number(values.messages);
const S = Number(values.seconds);
const killEvery = values['kill-every'] ? Number(values['kill-every']) : 0;
const settleMs = values['settle-ms'] === undefined ? undefined : Number(values['settle-ms']);
if (settleMs !== undefined && !(Number.isInteger(settleMs) && settleMs >= 0)) throw new Error(`--settle-ms must be whole milliseconds, 0 or more, not "${values['settle-ms']}"`);
const progress = (line) => process.stderr.write(`${line}\n`);

// mulberry32: a small seeded PRNG, so a run can be repeated. The send plan, the faults, the kills,
// the inbound writers and the consumer each draw from their own stream, so the plan does not
// depend on how the loops interleave (where the consumer is cut off does: it counts rows handed).
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
const rnd = { plan: seeded(0), faults: seeded(1), kills: seeded(2), inbound: seeded(3), consumer: seeded(4) };
const pick = (random, list) => list[Math.floor(random() * list.length)];

const phone = (i) => `1555030${String(i).padStart(4, '0')}`;
const peersOf = (i) => [0, 1, 2].map((j) => `1555040${String(i * 10 + j).padStart(4, '0')}`);
// Who writes to account i: three people of its own, or with --two-way the peers it writes to.
const writersOf = (i) => (values['two-way'] ? peersOf(i) : [0, 1, 2].map((j) => `1555041${String(i * 10 + j).padStart(4, '0')}`));
const FORBIDDEN_PEER = '15550499999'; // a policy rule refuses it to every account
const INVENTED_PEER = '15550498888'; // nobody's peer: what an agent might make up
const OPERATOR = '15550490000'; // the operator chat: alerts go here and nowhere else
if (N < 2) throw new Error('--accounts must be at least 2 (one account is in shadow mode)');

// The world. a0 carries the alert sink; even accounts (but the last) have allowTo (a0's also
// lists the operator, or its alerts would be refused); a0 takes messages only from two of the
// three who write to it (allowFrom: the third one's are stored as ignored); the last account is
// in shadow mode.
const SHADOW = N - 1;
const ids = [...Array(N).keys()];
const hasAllowTo = (i) => i % 2 === 0 && i !== SHADOW;
const allowToOf = (i) => (hasAllowTo(i) ? [...peersOf(i), ...(i === 0 ? [OPERATOR] : [])] : undefined);
const allowFromOf = (i) => (i === 0 ? writersOf(0).slice(0, 2) : undefined);
const CONSUMER = 'chaos';
const world = {
  accounts: ids.map((i) => ({ id: `a${i}`, phone: phone(i), allowTo: allowToOf(i), shadow: i === SHADOW })),
  operators: [OPERATOR],
  forbidden: [FORBIDDEN_PEER],
};

const emulator = await startEmulator();
const pg = HOSTS > 1 ? await startPostgres() : null;
const daemonConfig = {
  keepalive: { intervalMs: 1000, probeDeadlineMs: 700 },
  reconnect: { initialMs: 300, maxMs: 3000 },
  connectTimeoutMs: 6000,
  pacing: { enabled: false },
  ...(settleMs === undefined ? {} : { outbox: { settleMs } }),
  operators: [`+${OPERATOR}`],
  alerts: { sinks: [{ type: 'whatsapp', account: 'a0', to: [OPERATOR] }] },
  policy: {
    default: 'allow',
    rules: [
      { action: 'deny', name: 'chaos-forbidden', match: { peer: FORBIDDEN_PEER } },
      { action: 'deny', name: 'shadow-mode', match: { account: `a${SHADOW}`, chatType: 'direct' } },
    ],
  },
  consumers: [{ name: CONSUMER, type: 'stream' }],
  accounts: ids.map((i) => ({
    id: `a${i}`,
    wsUrl: emulator.url,
    ...(hasAllowTo(i) ? { allowTo: allowToOf(i) } : {}),
    ...(allowFromOf(i) ? { allowFrom: allowFromOf(i) } : {}),
  })),
};
const hosts = [];
for (let h = 0; h < HOSTS; h++) {
  hosts.push(await startDaemon(emulator, pg ? { ...daemonConfig, store: { type: 'postgres', url: pg.url, daemonId: `h${h + 1}` } } : daemonConfig));
}
const daemon = hosts[0];
const isLive = (d) => d.child.exitCode === null && d.child.signalCode === null;
/** A live daemon, at random (through the plan's stream) in a cluster. */
const anyDaemon = () => {
  const live = hosts.filter(isLive);
  return live.length ? pick(rnd.plan, live) : daemon;
};
/** Resolves with the first event matching pred on any daemon. */
const anyEvent = (pred, timeoutMs) => Promise.any(hosts.map((d) => d.nextEvent(pred, timeoutMs)));
/** Per daemon, when it was killed (ms): its accounts stop running then, whatever its last event said. */
const killedAt = hosts.map(() => []);
progress(
  `chaos: ${N} accounts, ${M} messages, ${S} s, seed ${values.seed}${killEvery ? `, kill -9 about every ${killEvery} s` : ''}${values['two-way'] ? ', peers written to also write' : ''}`,
);
progress(
  `  operator ${OPERATOR} (alerts via a0); allowTo on ${ids.filter(hasAllowTo).map((i) => `a${i}`).join(', ')}; allowFrom on a0; a${SHADOW} in shadow mode; stream consumer "${CONSUMER}"`,
);
if (HOSTS > 1) {
  // Leases first spread over every daemon, then each account is paired through its owner.
  for (const deadline = Date.now() + 60_000; ; ) {
    const c = (await daemon.client.request('GET', '/v1/status')).body.cluster;
    if (c.leases.length === N && c.leases.every((l) => l.live) && c.daemons.filter((d) => d.live).length === HOSTS && c.daemons.every((d) => d.accounts >= Math.floor(N / HOSTS))) break;
    if (Date.now() > deadline) throw new Error('the cluster did not spread the leases within 60 s');
    await sleep(200);
  }
  const owners = new Map((await daemon.client.request('GET', '/v1/status')).body.cluster.leases.map((l) => [l.account, l.owner]));
  for (const i of ids) await pairAccount(hosts[Number(owners.get(`a${i}`).slice(1)) - 1], emulator, `a${i}`, phone(i));
} else {
  for (const i of ids) await pairAccount(daemon, emulator, `a${i}`, phone(i));
}
progress(`accounts paired${HOSTS > 1 ? ` through their owners on ${HOSTS} daemons` : ''}`);

const accepted = new Map(); // key -> {account, to, messageId, text}
const gate = { deniedAsExpected: 0, refusedWrongly: 0, acceptedWrongly: 0 };
const attempts = { normal: 0, forbidden: 0, unlisted: 0, shadowReply: 0 };
let viaCli = 0;
let retries = 0;
let inboundToShadow = 0;
let inboundWrites = 0;

async function sendOnce(key, account, to, text) {
  const via = anyDaemon();
  if (Number(key.split('-')[1]) % 10 === 0) {
    viaCli++;
    const out = await new Promise((resolve) => {
      const c = spawn(process.execPath, [BIN, 'send', '--account', account, '--to', to, '--text', text, '--idempotency-key', key, '--json', '--socket', via.socket], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let s = '';
      c.stdout.on('data', (d) => (s += d));
      c.on('close', (code) => resolve(code === 0 ? s : null));
    });
    if (!out) throw new Error('cli send failed');
    return JSON.parse(out);
  }
  return (await via.client.request('POST', '/v1/messages', { account, to, text, idempotencyKey: key })).body;
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
    const h = Math.floor(rnd.kills() * HOSTS);
    progress(`  kill -9 #${kills}${HOSTS > 1 ? ` (daemon h${h + 1})` : ''}`);
    killedAt[h].push(Date.now());
    await hosts[h].restart({ kill: true }).catch((err) => progress(`  restart failed: ${err.message}`));
  }
}
// People write to every account (the shadow one reads, never replies; a0's third writer is not
// on its allowFrom); the emulator queues what an account's connection is not there to take.
async function inbound() {
  let n = 0;
  while (!stopFaults) {
    await sleep(150 + rnd.inbound() * 450);
    if (stopFaults) break;
    const i = pick(rnd.inbound, ids);
    await emulator.client
      .inbound({ from: pick(rnd.inbound, writersOf(i)), to: phone(i), text: `to a${i} ${n++}` })
      .then(() => {
        inboundWrites++;
        if (i === SHADOW) inboundToShadow++;
      })
      .catch(() => {});
  }
}

// The stream consumer: reads GET /v1/inbox/stream, acknowledges now and then what it was handed
// last, and is cut off (the connection aborted) after a random number of rows or a random time;
// it waits for its acks in flight, then reconnects. A kill -9 of the daemon cuts it too. Each
// row it is handed is noted with the cursor the daemon had confirmed acknowledged at that moment.
const reader = { deliveries: [], connections: 0, cuts: 0, acks: 0, ackErrors: 0, committed: 0 };
const readerWaiters = new Set();
let stopReader = false;
let readerAbort = null;
async function ack(via, cursor) {
  try {
    const r = await via.client.request('POST', '/v1/inbox/ack', { consumer: CONSUMER, cursor });
    reader.acks++;
    reader.committed = Math.max(reader.committed, Number(r.body.cursor));
  } catch {
    reader.ackErrors++; // not known to be committed: the rows may come again, which is allowed
  }
}
async function consumerReader() {
  const random = rnd.consumer;
  while (!stopReader) {
    const abort = new AbortController();
    readerAbort = abort;
    const connection = reader.connections + 1;
    const live = HOSTS > 1 ? hosts.filter(isLive) : [];
    const via = live.length ? pick(random, live) : daemon;
    const cutAfterRows = 1 + Math.floor(random() * 30);
    const cutAfterMs = 200 + random() * 3000;
    const acks = [];
    let handed = 0;
    let timer;
    let opened = false;
    const cut = () => {
      if (abort.signal.aborted) return;
      if (!stopReader) reader.cuts++;
      abort.abort();
    };
    try {
      await via.client.stream(
        `/v1/inbox/stream?consumer=${CONSUMER}`,
        (row) => {
          if (abort.signal.aborted) return; // a reader that was cut off handles nothing more
          reader.deliveries.push({ cursor: row.cursor, id: row.id, account: row.account, chat: row.chat, status: row.status, connection, committed: reader.committed });
          for (const w of readerWaiters) w();
          if (random() < 0.35) acks.push(ack(via, row.cursor));
          if (++handed >= cutAfterRows) cut();
        },
        {
          signal: abort.signal,
          onOpen: () => {
            opened = true;
            reader.connections = connection;
            timer = setTimeout(cut, cutAfterMs);
          },
        },
      );
    } catch {
      // daemon down (kill -9), or 409: the daemon (in a cluster, the one holding the consumer's lock) has not yet seen the last connection close
    }
    clearTimeout(timer);
    await Promise.allSettled(acks);
    if (!stopReader) await sleep(opened ? 20 + random() * 200 : 200);
  }
}

/** The inbox (in a cluster, the shared one, through a live daemon). */
async function collectAllInboxes() {
  return collectInbox((hosts.find(isLive) ?? daemon).client);
}

const faults = faulter();
const killing = killer();
const writing = inbound();
const reading = consumerReader();
await sender();
stopFaults = true;
await Promise.all([faults, killing, writing]);

// Inbound must settle before the 440 takes the shadow account away: every account open, the
// emulator's offline queues empty, and every message a peer sent in the inbox. Re-checked after
// each message or state event of the daemon (or each second without one), up to 60 s.
const inboundPeers = [...new Set(ids.flatMap((i) => writersOf(i)))];
const accountIdOf = new Map(ids.map((i) => [phone(i), `a${i}`]));
const settleStart = Date.now();
let inboundSettled = false;
let unsettled = '';
while (Date.now() - settleStart < 60_000) {
  try {
    const status = (await anyDaemon().client.request('GET', '/v1/status')).body;
    const notOpen = status.cluster
      ? status.cluster.leases.filter((l) => !l.live || l.state !== 'open').map((l) => l.account)
      : status.accounts.filter((a) => a.state !== 'open').map((a) => a.id);
    const queued = (await emulator.client.accounts()).reduce((n, a) => n + a.devices.reduce((m, d) => m + d.queued, 0), 0);
    const stored = new Set((await collectAllInboxes()).map((r) => `${r.account} ${r.id}`));
    const missing = (await collectSent(emulator.client, inboundPeers)).filter((m) => !stored.has(`${accountIdOf.get(m.to)} ${m.id}`)).length;
    unsettled = `not open: ${notOpen.join(', ') || 'none'}; queued at the emulator ${queued}; sent but not in the inbox ${missing}`;
    if (notOpen.length === 0 && queued === 0 && missing === 0) {
      inboundSettled = true;
      break;
    }
  } catch (err) {
    unsettled = `daemon not answering: ${err.message}`;
  }
  await anyEvent((e) => e.type === 'message.inbound' || e.type === 'message.ignored' || e.type === 'account.state', 1000).catch(() => {});
}
const inboundSettleMs = Date.now() - settleStart;
progress(`peers done writing (${inboundWrites} messages); inbound ${inboundSettled ? `settled in ${inboundSettleMs} ms` : `NOT settled after ${inboundSettleMs} ms (${unsettled})`}`);

// A fault that must raise an alert: the shadow account is replaced by another session (440).
// The conflict alert goes through a0 to the operator; the drain below waits for it.
// A 440 sent into a black hole that is still open is never seen, so try again until the daemon
// reports the conflict.
let conflictSeen = false;
for (let attempt = 0; attempt < 6 && !conflictSeen; attempt++) {
  const conflict = anyEvent((e) => e.type === 'account.state' && e.account === `a${SHADOW}` && e.state === 'conflict', 8000);
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

// The consumer catches up: every readable row of the final inbox handed to it at least once
// (re-checked after each row it is handed, or each second), up to 60 s; then it stops.
const catchUpStart = Date.now();
let inboxRows = [];
for (;;) {
  inboxRows = await collectAllInboxes();
  const handed = new Set(reader.deliveries.map((d) => d.cursor));
  const behind = inboxRows.filter((r) => (r.status === 'ok' || r.status === 'undecryptable') && !handed.has(r.cursor)).length;
  if (behind === 0 || Date.now() - catchUpStart > 60_000) break;
  await new Promise((resolve) => {
    const t = setTimeout(done, 1000);
    function done() {
      clearTimeout(t);
      readerWaiters.delete(done);
      resolve();
    }
    readerWaiters.add(done);
  });
}
stopReader = true;
readerAbort?.abort();
await reading;
const sentByPeers = await collectSent(emulator.client, inboundPeers);
const inboxCheck = checkInbox(
  { accounts: ids.map((i) => ({ id: `a${i}`, phone: phone(i), ...(allowFromOf(i) ? { allowFrom: allowFromOf(i) } : {}) })) },
  sentByPeers,
  inboxRows,
  { deliveries: reader.deliveries },
);

const alertsRaised = [];
for (const d of hosts.filter(isLive)) {
  const list = (await d.client.request('GET', '/v1/alerts')).body;
  alertsRaised.push(...list.recent.filter((n) => n.type === 'alert').map((n) => `${n.alert.code}${n.alert.account ? `(${n.alert.account})` : ''}`));
}

// Recovery: close -> next open per account, from the daemon's own events (the final 440 is not a recovery).
const recoveries = [];
const lastClose = new Map();
for (const e of hosts.flatMap((d) => d.events).sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) {
  if (e.type === 'account.close' && e.name !== 'local') lastClose.set(e.account, Date.parse(e.at));
  if (e.type === 'account.state' && e.state === 'open' && lastClose.has(e.account)) {
    recoveries.push(Date.parse(e.at) - lastClose.get(e.account));
    lastClose.delete(e.account);
  }
}
// A lost message the peer's phone received but could not decrypt is named as such: the emulator
// logs the failure and, unlike a real phone, sends no retry receipt that would make Baileys
// re-encrypt and resend it (docs/emulator.md, "Retry receipts").
const undecryptedAtPeer = new Set();
if (check.lost > 0) {
  for (const i of ids) {
    for (const e of await emulator.client.events(phone(i))) {
      const m = /^message (\S+): \S+ failed to decrypt/.exec(e.text);
      if (m) undecryptedAtPeer.add(m[1]);
    }
  }
  for (const f of check.findings) if (f.kind === 'lost' && undecryptedAtPeer.has(f.id)) f.reason += "; it reached the peer's phone, which failed to decrypt it";
}
const ownership = HOSTS > 1 ? checkOwnership(hosts.map((d, h) => ({ id: `h${h + 1}`, events: d.events, killedAt: killedAt[h] })), `a${SHADOW}`) : { overlaps: [], conflicts: 0 };
// All at once: stopped one by one, each would hand its accounts to daemons about to stop too.
await Promise.all(hosts.filter(isLive).map((d) => d.stop()));
await emulator.stop();
await pg?.stop();

for (const f of check.findings.slice(0, 20)) progress(`  ${f.kind}: at ${f.peer} from ${f.from} id ${f.id} "${f.text}": ${f.reason}`);
for (const f of inboxCheck.findings.slice(0, 20)) progress(`  ${f.kind}: ${f.account} chat ${f.chat} id ${f.id} cursor ${f.cursor} "${f.text}": ${f.reason}`);
const gateMistakes = gate.refusedWrongly + gate.acceptedWrongly;
const policyViolations = check.policyViolations + gateMistakes;
const result = {
  accounts: N,
  sent: check.sent,
  delivered: check.delivered,
  lost: check.lost,
  lostPeerCouldNotDecrypt: check.findings.filter((f) => f.kind === 'lost' && undecryptedAtPeer.has(f.id)).length,
  peerDuplicates: check.peerDuplicates,
  wireDuplicates: check.wireDuplicates,
  alertsToPeers: check.alertsToPeers,
  policyViolations,
  maxRecoveryMs: recoveries.length ? Math.max(...recoveries) : 0,
  p99RecoveryMs: recoveries.length ? percentile(recoveries, 99) : 0,
  seed: Number(values.seed),
  seconds: S,
  // The window the daemon ran with (its default when --settle-ms was not given).
  settleMs: settleMs ?? DEFAULT_SETTLE_MS,
  twoWay: values['two-way'],
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
  inboundSent: inboxCheck.inboundSent,
  inboundLost: inboxCheck.inboundLost,
  inboundLostReceipted: inboxCheck.inboundLostReceipted,
  inboundDuplicates: inboxCheck.inboundDuplicates,
  inboundIgnored: inboxCheck.inboundIgnored,
  inboundUndecryptable: inboxCheck.inboundUndecryptable,
  inboundWrongStatus: inboxCheck.inboundWrongStatus,
  inboxUnexpected: inboxCheck.inboxUnexpected,
  inboundOffline: inboxRows.filter((r) => r.offline).length, // came from the emulator's offline queue (the account was not connected)
  inboundSettled,
  inboundSettleMs,
  inboundToShadow,
  consumerReceived: inboxCheck.consumerReceived,
  consumerMissed: inboxCheck.consumerMissed,
  consumerDuplicatesAfterAck: inboxCheck.consumerDuplicatesAfterAck,
  consumerRedelivered: inboxCheck.consumerRedelivered,
  consumerGaps: inboxCheck.consumerGaps,
  consumerIgnored: inboxCheck.consumerIgnored,
  consumerConnections: reader.connections,
  consumerCuts: reader.cuts,
  consumerAcks: reader.acks,
  consumerAckErrors: reader.ackErrors, // acks with no answer (daemon killed): maybe committed, so not counted as acknowledged
  peersChecked: Object.keys(received).length,
  alertsRaised,
  alertsToOperators: check.alertsToOperators,
  policyViolationsAtPeers: check.policyViolations,
  unexpectedAtPeers: check.unexpected,
  refusedWrongly: gate.refusedWrongly,
  acceptedWrongly: gate.acceptedWrongly,
  hosts: HOSTS,
  ...(HOSTS > 1
    ? {
        doubleOwnership: ownership.overlaps.length,
        conflictsSeen: ownership.conflicts,
      }
    : {}),
};
for (const o of ownership.overlaps.slice(0, 10)) progress(`  double ownership: ${o}`);
progress(
  `chaos: sent ${result.sent}, delivered ${result.delivered}, lost ${result.lost}; ` +
    `shown twice at a peer (same message, new id) ${result.peerDuplicates}; same-id wire copies ${result.wireDuplicates} (shown once: assumed of WhatsApp clients, see README); ` +
    `alerts raised ${alertsRaised.length}, at the operator ${result.alertsToOperators}, at anyone else ${result.alertsToPeers}; ` +
    `refused as expected ${result.deniedAsExpected}, policy violations ${policyViolations}, unexpected at peers ${check.unexpected}`,
);
progress(
  `inbound: peers sent ${result.inboundSent}, lost ${result.inboundLost} (of them receipted ${result.inboundLostReceipted}), stored twice ${result.inboundDuplicates}, ` +
    `from the offline queue ${result.inboundOffline}, ignored (allowFrom) ${result.inboundIgnored}, undecryptable ${result.inboundUndecryptable}, wrong status ${result.inboundWrongStatus}, unexpected in the inbox ${result.inboxUnexpected}; ` +
    `consumer: handed ${result.consumerReceived} over ${result.consumerConnections} connections (${result.consumerCuts} cut off, ${result.consumerAcks} acks), ` +
    `again before an ack ${result.consumerRedelivered}, missed ${result.consumerMissed}, again after an ack ${result.consumerDuplicatesAfterAck}, skipped on a connection ${result.consumerGaps}, ignored handed ${result.consumerIgnored}`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
const outboundOk = check.lost === 0 && check.peerDuplicates === 0 && check.alertsToPeers === 0 && policyViolations === 0 && check.unexpected === 0;
const inboundOk = inboxCheck.inboundLost === 0 && inboxCheck.inboundDuplicates === 0 && inboxCheck.inboundWrongStatus === 0 && inboxCheck.inboxUnexpected === 0;
const clusterOk = HOSTS === 1 || (ownership.overlaps.length === 0 && ownership.conflicts === 0);
const consumerOk = inboxCheck.consumerMissed === 0 && inboxCheck.consumerDuplicatesAfterAck === 0 && inboxCheck.consumerGaps === 0 && inboxCheck.consumerIgnored === 0;
if (HOSTS > 1) {
  progress(`cluster: ${HOSTS} daemons, ${kills} killed; double ownership ${result.doubleOwnership}, 440s seen by a daemon (other than the final injected one) ${result.conflictsSeen}`);
}
process.exitCode = outboundOk && inboundOk && consumerOk && clusterOk ? 0 : 1;
