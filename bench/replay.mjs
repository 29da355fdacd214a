// bench/replay: 1,000 rows queued while the account is down; when it opens, time to the first
// server ack and to all delivered, pacing off. Repeated for 20 rounds by default: enough for a
// p50 and a p95; a p99 by nearest rank needs 100 rounds, so below that the figure reported and
// checked against the goal is the maximum, and it is called that.
// Usage: node bench/replay.mjs [--rows 1000] [--rounds 20]
import { parseArgs } from 'node:util';
import { addAndPair, percentile, report, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '20' } } });
const rows = Number(values.rows);
const rounds = Number(values.rounds);
const emulator = await startEmulator();
const daemon = await startDaemon(emulator, { pacing: { enabled: false } });
const phone = '15550008001';
await addAndPair(daemon, emulator, 'bench', phone);
const peers = Array.from({ length: 20 }, (_, i) => `1555001${String(i).padStart(4, '0')}`);
const results = [];
for (let round = 0; round < rounds; round++) {
  // Down: every reconnect is refused until the rows are in.
  await emulator.client.injectFault(phone, { kind: 'upgrade-refused', code: 503 });
  const down = daemon.nextEvent((e) => e.type === 'account.state' && e.account === 'bench' && e.state === 'reconnecting');
  await emulator.client.injectFault(phone, { kind: 'close' });
  await down;
  const ids = new Set();
  for (let i = 0; i < rows; i++) {
    const r = await daemon.client.request('POST', '/v1/messages', { account: 'bench', to: peers[i % peers.length], text: `r${round}-${i}` });
    ids.add(r.body.id);
  }
  const opened = daemon.nextEvent((e) => e.type === 'account.state' && e.account === 'bench' && e.state === 'open', 120_000);
  const firstSent = daemon.nextEvent((e) => e.type === 'message.sent' && ids.has(e.id), 120_000);
  let delivered = 0;
  const allDelivered = daemon.nextEvent((e) => e.type === 'message.delivered' && ids.has(e.id) && ++delivered === rows, 300_000);
  await emulator.client.clearFaults(phone);
  const o = await opened;
  const f = await firstSent;
  const a = await allDelivered;
  const t = (e) => Date.parse(e.at);
  results.push({ firstAckMs: t(f) - t(o), allDeliveredMs: t(a) - t(o) });
  process.stderr.write(`round ${round + 1}: first ack ${t(f) - t(o)} ms, all ${rows} delivered ${t(a) - t(o)} ms\n`);
}
// The emulator delays every frame it sends (a realistic default); the figures depend on it.
const emulatorLatencyMs = await emulator.client.latency().catch(() => null);
await daemon.stop();
await emulator.stop();
const first = results.map((r) => r.firstAckMs);
const all = results.map((r) => r.allDeliveredMs);
// Nearest rank: with fewer than 100 rounds the 99th percentile is the maximum itself.
const p99IsMax = rounds < 100;
const firstMax = Math.max(...first);
const firstP99 = percentile(first, 99);
const checked = p99IsMax ? firstMax : firstP99;
const p50All = percentile(all, 50);
report(
  'replay',
  {
    rows,
    rounds,
    peers: peers.length,
    settings: 'pacing off; emulator in its own process',
    emulatorLatencyMs,
    firstAckMs: { p50: percentile(first, 50), p95: percentile(first, 95), p99: firstP99, max: firstMax, p99IsMax, all: first },
    allDeliveredMs: { p50: p50All, p95: percentile(all, 95), max: Math.max(...all), all },
    messagesPerSecond: Math.round(rows / (p50All / 1000)),
    goal: { firstAckP99Ms: 200, checkedAgainst: p99IsMax ? 'max' : 'p99' },
    met: checked <= 200,
  },
  `replay of ${rows} rows, ${rounds} rounds: open -> first ack p50 ${percentile(first, 50)} ms, p95 ${percentile(first, 95)} ms, ` +
    `${p99IsMax ? `max ${firstMax} ms (a p99 needs 100 rounds; the goal is checked against the max)` : `p99 ${firstP99} ms, max ${firstMax} ms`} ` +
    `(goal <= 200: ${checked <= 200 ? 'met' : 'NOT met'}); open -> all delivered p50 ${p50All} ms, max ${Math.max(...all)} ms (${Math.round(rows / (p50All / 1000))} msg/s)`,
);
