// bench/throughput: sending at scale. N paired accounts (default 1,000), pacing off, the emulator in
// its own process at its default frame delay. Two phases, each timed from the first enqueue to the
// last `message.sent`:
// 1. new chats: every account sends one message to a peer it has never written to, so each send
//    first looks the peer up (usync), fetches its prekeys and sets up a Signal session;
// 2. known chats: every account sends ten more (--messages) to the chat phase 1 opened, on the
//    session it now has; enqueued round by round (message k of every account before message k+1).
// Messages are enqueued over the control socket (POST /v1/messages), --enqueue-concurrency at a
// time; the daemon then sends one row at a time per account. Per phase: wall time, messages per
// second, enqueue → `sent` latency (from the client's clock before the POST to the event's own
// time) p50, p99 and max with the number of samples (nearest rank; below 100 samples the p99 is
// the max, and is called that), and the CPU of the daemon, the emulator and this process over the
// phase (% of one core). A phase gives up after --timeout-seconds and reports the rows not sent.
// At the end every message is checked decrypted, once, at its peer.
// --profile: the daemon and the emulator run with --cpu-prof and are stopped with SIGTERM, so that
// both write their profile; each profile is summarised per phase, counting only the samples inside
// the phase (V8 stamps samples with the same monotonic clock as process.hrtime): the top functions
// by self time (--top, default 15), daemon and emulator side by side. The .cpuprofile files are
// kept (--profile-dir, else a new temporary directory, named on stderr) to open in DevTools.
// Usage: node bench/throughput.mjs [--accounts 1000] [--messages 10] [--pair-concurrency 4]
//        [--enqueue-concurrency 32] [--emulator-latency-ms N] [--timeout-seconds 3600]
//        [--profile] [--profile-dir DIR] [--top 15]
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { addAndPair, cpuSeconds, percentile, report, sleep, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '10' },
    'pair-concurrency': { type: 'string', default: '4' },
    'enqueue-concurrency': { type: 'string', default: '32' },
    'emulator-latency-ms': { type: 'string' },
    'timeout-seconds': { type: 'string', default: '3600' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    top: { type: 'string', default: '15' },
  },
});
const accountCount = Number(values.accounts);
const knownMessages = Number(values.messages);
const pairConcurrency = Math.max(1, Number(values['pair-concurrency']));
const enqueueConcurrency = Math.max(1, Number(values['enqueue-concurrency']));
const latencyMs = values['emulator-latency-ms'] === undefined ? null : Number(values['emulator-latency-ms']);
const timeoutMs = Number(values['timeout-seconds']) * 1000;
const topN = Number(values.top);
if (!Number.isInteger(accountCount) || accountCount < 1) throw new Error('--accounts: a positive integer');
if (!Number.isInteger(knownMessages) || knownMessages < 1) throw new Error('--messages: a positive integer');

const ms = (x) => +x.toFixed(2);
const accountPhone = (i) => `15556${String(i).padStart(6, '0')}`;
const peerPhone = (i) => `15557${String(i).padStart(6, '0')}`;
/** Nearest-rank p50/p99 and max of a list of ms; below 100 samples the p99 is the maximum. */
const dist = (xs) => ({ samples: xs.length, mean: ms(xs.reduce((a, b) => a + b, 0) / xs.length), p50: ms(percentile(xs, 50)), p99: ms(percentile(xs, 99)), max: ms(Math.max(...xs)), p99IsMax: xs.length < 100 });
/** Microseconds on the monotonic clock, the clock of a .cpuprofile's startTime and samples. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

// Profiles: one directory per process, so each holds exactly one .cpuprofile at the end.
const profileDir = values.profile ? (values['profile-dir'] ? resolve(values['profile-dir']) : mkdtempSync(join(tmpdir(), 'wab-prof-'))) : null;
const profArgs = (who) => {
  if (!profileDir) return [];
  mkdirSync(join(profileDir, who), { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', join(profileDir, who)];
};

const emulator = await startEmulator([], values.profile ? { nodeArgs: profArgs('emulator') } : {});
const daemon = await startDaemon(emulator, { pacing: { enabled: false } }, values.profile ? { nodeArgs: profArgs('daemon') } : {});
const accounts = Array.from({ length: accountCount }, (_, i) => ({ id: `t${i + 1}`, phone: accountPhone(i + 1), peer: peerPhone(i + 1) }));

// Pair every account, `pairConcurrency` at a time.
const tPair = performance.now();
let claimed = 0;
let paired = 0;
await Promise.all(
  Array.from({ length: Math.min(pairConcurrency, accountCount) }, async () => {
    for (let a = accounts[claimed++]; a; a = accounts[claimed++]) {
      await addAndPair(daemon, emulator, a.id, a.phone);
      if (++paired % 100 === 0) process.stderr.write(`  paired ${paired}\n`);
    }
  }),
);
const pairSeconds = +((performance.now() - tPair) / 1000).toFixed(1);
if (latencyMs !== null) await emulator.client.setLatency(latencyMs);
const emulatorLatencyMs = await emulator.client.latency().catch(() => null);
process.stderr.write(`${accountCount} accounts paired in ${pairSeconds} s (${pairConcurrency} at a time); emulator frame delay ${emulatorLatencyMs} ms\n`);
await sleep(3000); // let the work after pairing (prekey uploads, presence) settle

// Each row's outcome, read from the daemon's event stream as it arrives: sent (or already past
// it), or a state it will not be sent from.
const SENT = new Set(['message.sent', 'message.delivered', 'message.read']);
const NOT_SENT = new Set(['message.failed', 'message.expired', 'message.denied', 'message.cancelled', 'message.held']);
const outcome = new Map(); // row id -> { sentAt } or { state }
let seen = 0;
function readEvents() {
  for (; seen < daemon.events.length; seen++) {
    const e = daemon.events[seen];
    if (outcome.has(e.id)) continue;
    if (SENT.has(e.type)) outcome.set(e.id, { sentAt: Date.parse(e.at) });
    else if (NOT_SENT.has(e.type)) outcome.set(e.id, { state: e.state, reason: e.reason });
  }
}

const pids = () => [daemon.child.pid, emulator.pid];
const snapshot = () => ({ t: performance.now(), cpu: pids().map(cpuSeconds), self: process.cpuUsage() });
const pct = (seconds, wallMs) => +((seconds / (wallMs / 1000)) * 100).toFixed(1);
function cpuOver(a, b) {
  const wall = b.t - a.t;
  const [d, e] = a.cpu.map((c, i) => (c === null || b.cpu[i] === null ? null : pct(b.cpu[i] - c, wall)));
  const self = process.cpuUsage(a.self);
  return { daemonPercent: d, emulatorPercent: e, benchPercent: pct((self.user + self.system) / 1e6, wall) };
}

/** Enqueues `sends` in order, enqueueConcurrency at a time, and waits until every row is sent (or will not be). */
async function phase(name, sends) {
  const s0 = snapshot();
  const events0 = daemon.events.length;
  const fromUs = monotonicUs();
  const t0 = Date.now();
  const rows = new Array(sends.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(enqueueConcurrency, sends.length) }, async () => {
      for (let i = next++; i < sends.length; i = next++) {
        const enqueuedAt = Date.now();
        const r = (await daemon.client.request('POST', '/v1/messages', sends[i])).body;
        rows[i] = { peer: sends[i].to, id: r.id, messageId: r.messageId, enqueuedAt };
      }
    }),
  );
  const enqueuedMs = Date.now() - t0;
  let waiting = rows;
  while (waiting.length && Date.now() - t0 < timeoutMs) {
    await sleep(20);
    readEvents();
    waiting = waiting.filter((r) => !outcome.has(r.id));
  }
  const toUs = monotonicUs();
  const cpu = cpuOver(s0, snapshot());
  const sent = rows.filter((r) => outcome.get(r.id)?.sentAt !== undefined);
  const notSent = {};
  for (const r of rows) {
    const o = outcome.get(r.id);
    if (o?.sentAt === undefined) notSent[o?.state ?? 'pending at the timeout'] = (notSent[o?.state ?? 'pending at the timeout'] ?? 0) + 1;
  }
  // Connections closed during the phase, by close name (a re-sent row after one reaches its peer twice).
  const closes = {};
  for (const e of daemon.events.slice(events0)) if (e.type === 'account.close') closes[e.name ?? e.code] = (closes[e.name ?? e.code] ?? 0) + 1;
  const loop = (await daemon.client.request('GET', '/v1/status')).body.daemon.eventLoop;
  const lastSentAt = sent.length ? Math.max(...sent.map((r) => outcome.get(r.id).sentAt)) : null;
  const wallMs = lastSentAt === null ? null : lastSentAt - t0;
  const p = {
    phase: name,
    messages: rows.length,
    sent: sent.length,
    notSent,
    wallSeconds: wallMs === null ? null : +(wallMs / 1000).toFixed(2),
    enqueueSeconds: +(enqueuedMs / 1000).toFixed(2),
    messagesPerSecond: wallMs ? Math.round(sent.length / (wallMs / 1000)) : null,
    enqueueToSentMs: sent.length ? dist(sent.map((r) => outcome.get(r.id).sentAt - r.enqueuedAt)) : null,
    cpu,
    closes,
    daemonLoopDelayLastMinuteMs: loop?.lastMinute ?? null,
  };
  const l = p.enqueueToSentMs;
  process.stderr.write(
    `${name}: ${p.sent} of ${p.messages} sent in ${p.wallSeconds} s (${p.messagesPerSecond}/s; enqueued in ${p.enqueueSeconds} s); ` +
      (l ? `enqueue -> sent p50 ${l.p50} ms, ${l.p99IsMax ? 'max' : `p99 ${l.p99} ms, max`} ${l.max} ms (${l.samples} samples); ` : '') +
      `CPU daemon ${cpu.daemonPercent} %, emulator ${cpu.emulatorPercent} %, bench ${cpu.benchPercent} %; ` +
      `closes ${JSON.stringify(closes)}, daemon loop delay max ${loop?.lastMinute.maxMs} ms in the last minute\n`,
  );
  return { result: p, rows, window: { fromUs, toUs } };
}

const phase1 = await phase(
  'new chats',
  accounts.map((a) => ({ account: a.id, to: a.peer, text: `hello from ${a.id}` })),
);
const phase2 = await phase(
  'known chats',
  Array.from({ length: knownMessages }, (_, k) => accounts.map((a) => ({ account: a.id, to: a.peer, text: `${a.id} message ${k + 1}` }))).flat(),
);

// Every message decrypted at its peer, once (the peer's phone records each message id once, with a copy count).
const expected = new Map(); // peer -> message ids
for (const r of [...phase1.rows, ...phase2.rows]) expected.set(r.peer, [...(expected.get(r.peer) ?? []), r.messageId]);
let decrypted = 0;
let twice = 0;
const deadline = Date.now() + 60_000;
for (const [peer, ids] of expected) {
  for (;;) {
    const got = (await emulator.client.peerMessages(peer)).filter((m) => ids.includes(m.id));
    if (got.length === ids.length || Date.now() > deadline) {
      decrypted += got.length;
      twice += got.filter((m) => m.copies !== 1).length;
      break;
    }
    await sleep(100);
  }
}
const total = phase1.rows.length + phase2.rows.length;
const correct = phase1.result.sent + phase2.result.sent === total && decrypted === total && twice === 0;

// Stop both with SIGTERM: a .cpuprofile is written as the process exits.
await daemon.stop();
await emulator.stop();

/** The one .cpuprofile in a directory, parsed. */
function readProfile(who) {
  const file = readdirSync(join(profileDir, who)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile from the ${who}`);
  return JSON.parse(readFileSync(join(profileDir, who, file), 'utf8'));
}

/**
 * Self time per function (same name, file and line) from the samples of one profile between two
 * monotonic times: each sample counts its timeDelta for the node it hit. "(idle)" is left out of
 * the ranking; percentages are of the busy (not idle) sampled time.
 */
function selfTimes(profile, { fromUs, toUs }) {
  const frameOf = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byFunction = new Map();
  let t = profile.startTime;
  let sampledUs = 0;
  let idleUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i];
    t += dt;
    if (t < fromUs || t > toUs) return;
    sampledUs += dt;
    const f = frameOf.get(id);
    if (f.functionName === '(idle)') return void (idleUs += dt);
    const key = `${f.functionName}|${f.url}|${f.lineNumber}`;
    const entry = byFunction.get(key) ?? { f, us: 0 };
    entry.us += dt;
    byFunction.set(key, entry);
  });
  const busyUs = sampledUs - idleUs;
  const where = (f) => {
    if (!f.url) return '';
    if (f.url.startsWith('node:')) return `node:${basename(f.url)}:${f.lineNumber + 1}`;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f.url)?.[1];
    return `${pkg ? `${pkg}/` : ''}${basename(f.url)}:${f.lineNumber + 1}`;
  };
  const top = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map(({ f, us }) => ({ function: f.functionName || '(anonymous)', where: where(f), selfMs: Math.round(us / 1000), percent: +((us / busyUs) * 100).toFixed(1) }));
  return { sampledMs: Math.round(sampledUs / 1000), idleMs: Math.round(idleUs / 1000), busyMs: Math.round(busyUs / 1000), top };
}

let profiles = null;
if (profileDir) {
  const daemonProfile = readProfile('daemon');
  const emulatorProfile = readProfile('emulator');
  profiles = {};
  for (const [key, p] of [
    ['newChats', phase1],
    ['knownChats', phase2],
  ]) {
    profiles[key] = { daemon: selfTimes(daemonProfile, p.window), emulator: selfTimes(emulatorProfile, p.window) };
  }
  process.stderr.write(`profiles in ${profileDir}\n`);
}

/** Two top lists as columns: "percent selfMs function where" on each side. */
function sideBySide(title, { daemon: d, emulator: e }) {
  const cell = (x) => (x ? `${String(x.percent).padStart(5)} % ${String(x.selfMs).padStart(6)} ms  ${x.function} ${x.where}` : '').slice(0, 78).padEnd(78);
  const lines = [`  ${title}: top ${topN} by self time, % of each process's busy samples (daemon busy ${d.busyMs} ms, emulator busy ${e.busyMs} ms)`];
  lines.push(`    ${'daemon'.padEnd(78)} | emulator`);
  for (let i = 0; i < Math.max(d.top.length, e.top.length); i++) lines.push(`    ${cell(d.top[i])} | ${cell(e.top[i]).trimEnd()}`);
  return lines.join('\n');
}
const phaseLine = (p) => {
  const l = p.enqueueToSentMs;
  return (
    `  ${p.phase}: ${p.sent} of ${p.messages} sent in ${p.wallSeconds} s, ${p.messagesPerSecond} messages/s (enqueued in ${p.enqueueSeconds} s); ` +
    (l ? `enqueue -> sent p50 ${l.p50} ms, ${l.p99IsMax ? `max ${l.max} ms (${l.samples} samples; a p99 needs 100)` : `p99 ${l.p99} ms, max ${l.max} ms (${l.samples} samples)`}; ` : '') +
    `CPU daemon ${p.cpu.daemonPercent} %, emulator ${p.cpu.emulatorPercent} %, bench ${p.cpu.benchPercent} % of one core; ` +
    `connections closed ${Object.keys(p.closes).length ? JSON.stringify(p.closes) : 'none'}; daemon loop delay max ${p.daemonLoopDelayLastMinuteMs?.maxMs} ms (last minute)` +
    (Object.keys(p.notSent).length ? `; not sent: ${JSON.stringify(p.notSent)}` : '')
  );
};
report(
  'throughput',
  {
    accounts: accountCount,
    messagesPerAccount: { newChats: 1, knownChats: knownMessages },
    settings:
      `pacing off; one peer per account, never written to before phase 1, the same peer in phase 2; POST /v1/messages ${enqueueConcurrency} at a time, phase 2 round by round; ` +
      `wall time from the first enqueue to the last message.sent (the event's own time); latency nearest rank; CPU % of one core over the phase${profileDir ? '; with --cpu-prof on the daemon and the emulator (the profiler adds to their CPU)' : ''}`,
    emulatorLatencyMs,
    pairing: { concurrency: pairConcurrency, wallSeconds: pairSeconds },
    newChats: phase1.result,
    knownChats: phase2.result,
    checks: { messages: total, decryptedAtPeers: decrypted, decryptedTwice: twice },
    profiles,
    goal: 'reported',
    met: correct,
  },
  [
    `throughput, ${accountCount} accounts (1 message to a new chat, then ${knownMessages} to the chat it knows): ${correct ? `all ${total} sent and decrypted once at their peers` : `NOT all sent and decrypted once (${decrypted} of ${total} decrypted, ${twice} twice)`}`,
    phaseLine(phase1.result),
    phaseLine(phase2.result),
    ...(profiles ? [sideBySide('new chats', profiles.newChats), sideBySide('known chats', profiles.knownChats)] : []),
  ].join('\n'),
);
process.exitCode = correct ? 0 : 1;
