// bench/replay: 1,000 rows queued while the account is down; when it opens, time to the first
// server ack and to all delivered, pacing off. Repeated for several rounds to get a p99.
// Usage: node bench/replay.mjs [--rows 1000] [--rounds 5]
import { parseArgs } from 'node:util';
import { addAndPair, percentile, report, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' } } });
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
await daemon.stop();
await emulator.stop();
const first = results.map((r) => r.firstAckMs);
const all = results.map((r) => r.allDeliveredMs);
const p99 = percentile(first, 99);
report(
  'replay',
  {
    rows,
    rounds,
    peers: peers.length,
    settings: 'pacing off; emulator in its own process',
    firstAckMs: { p50: percentile(first, 50), p99, all: first },
    allDeliveredMs: { p50: percentile(all, 50), max: Math.max(...all), all },
    messagesPerSecond: Math.round(rows / (percentile(all, 50) / 1000)),
    goal: { firstAckP99Ms: 200 },
    met: p99 <= 200,
  },
  `replay of ${rows} rows: open -> first ack p99 ${p99} ms (goal <= 200: ${p99 <= 200 ? 'met' : 'NOT met'}); open -> all delivered p50 ${percentile(all, 50)} ms (${Math.round(rows / (percentile(all, 50) / 1000))} msg/s)`,
);
