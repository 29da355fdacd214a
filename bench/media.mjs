// bench/media: a 5 MiB document sent through the daemon, one paired account and one peer, pacing
// off. Each file is "%PDF-1.4\n" and random bytes, a different one every time. Two phases, after
// one text to the peer (so the rounds time the media, not the first Signal session):
// 1. latency, R rounds (default 10): POST /v1/media with the bytes, then POST /v1/messages naming
//    the file by sha256; timed are the upload, enqueue → `message.sent` (the event's own time on
//    the daemon's event stream) and enqueue → the peer's phone has downloaded, checked and
//    decrypted it with the right sha256 (the time the emulator recorded the message, read back
//    from its control API; the emulator runs in its own process, so it is polled for it).
//    Percentiles by nearest rank: a p95 that is not the maximum needs 20 rounds, a p99 100; below
//    that the figure is the maximum, and it is called that.
// 2. memory: the account is refused by the emulator (as in bench/replay), 20 such files are
//    uploaded and queued while it is down, then it is let back and they all go out. The daemon's
//    RSS (VmRSS) is sampled every 100 ms: before, once all are queued, and its peak until all 20
//    are sent and decrypted at the peer. The daemon sends one row at a time per account, and a
//    media send streams the file from the store through encryption to a temporary file and
//    uploads that from disk, so at most one file is in flight: the bound is two copies of one file
//    (plaintext and ciphertext, were a step to buffer them whole) plus a fixed 20 MiB for the
//    heap and allocator slack that ~100 MiB of streamed bytes leave behind. Holding the 20 queued
//    files in memory would be 20 × 5 MiB = 100 MiB; a copy per attempt more. Every file must
//    arrive decrypted with its sha256, once, after one upload and one wire send each.
// Usage: node bench/media.mjs [--rounds 10] [--size-mb 5] [--queued 20]
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addAndPair, percentile, report, rssBytes, sleep, startDaemon, startEmulator } from './lib.mjs';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '10' }, 'size-mb': { type: 'string', default: '5' }, queued: { type: 'string', default: '20' } },
});
const rounds = Number(values.rounds);
const sizeMiB = Number(values['size-mb']);
const queued = Number(values.queued);
const size = Math.round(sizeMiB * 2 ** 20);
const MiB = (b) => +(b / 2 ** 20).toFixed(1);
const FIXED_OVERHEAD_MIB = 20;
const boundMiB = 2 * (size / 2 ** 20) + FIXED_OVERHEAD_MIB;

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, { pacing: { enabled: false } });
const pid = daemon.child.pid;
const PHONE = '15550009001';
const PEER = '15550009100';
await addAndPair(daemon, emulator, 'bench', PHONE);
const files = mkdtempSync(join(tmpdir(), 'wab-media-'));

// Daemon RSS every 100 ms for the whole run: [ms since start, bytes].
const t0 = Date.now();
const rss = [];
const sample = () => rss.push([Date.now() - t0, rssBytes(pid)]);
sample();
const sampler = setInterval(sample, 100);

/** The first daemon event (already recorded or still to come) after index `from` matching pred. */
function waitEvent(pred, from = 0, timeoutMs = 120_000) {
  const found = daemon.events.slice(from).find(pred);
  return found ? Promise.resolve(found) : daemon.nextEvent(pred, timeoutMs);
}

/** Polls the emulator until the peer's phone has decrypted every id given; resolves with those messages. */
async function decryptedAtPeer(ids, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = (await emulator.client.peerMessages(PEER)).filter((m) => ids.includes(m.id));
    if (got.length === ids.length) return ids.map((id) => got.find((m) => m.id === id));
    if (Date.now() > deadline) throw new Error(`the peer decrypted ${got.length} of ${ids.length} messages within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** A new file of `size` bytes on disk, a PDF by its first bytes; answers its path and sha256. */
function newFile(name) {
  const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(size - 9)]);
  const path = join(files, name);
  writeFileSync(path, bytes);
  return { path, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Uploads the file and queues a document naming it; answers the row and the times taken. */
async function uploadAndQueue(name) {
  const file = newFile(name);
  const u0 = performance.now();
  const up = (await daemon.client.uploadFile('/v1/media', file.path)).body;
  const uploadMs = performance.now() - u0;
  rmSync(file.path);
  if (up.sha256 !== file.sha256 || up.bytes !== size || up.mimetype !== 'application/pdf') throw new Error(`upload answered ${JSON.stringify(up)}`);
  const from = daemon.events.length;
  const enqueuedAt = Date.now();
  const row = (await daemon.client.request('POST', '/v1/messages', { account: 'bench', to: PEER, media: { sha256: up.sha256, fileName: name, mimetype: 'application/pdf' } })).body;
  return { row, sha256: file.sha256, uploadMs, enqueuedAt, from };
}

const checkArrived = (m, sha256) => m.media?.error === null && m.media.sha256 === sha256 && m.media.size === size && m.copies === 1;

// Warm-up: the first message to a peer sets up its Signal session.
const warm = (await daemon.client.request('POST', '/v1/messages', { account: 'bench', to: PEER, text: 'warm-up' })).body;
await decryptedAtPeer([warm.messageId]);
await waitEvent((e) => e.type === 'message.sent' && e.id === warm.id);

// 1. Latency.
const latency = [];
for (let r = 0; r < rounds; r++) {
  const q = await uploadAndQueue(`round-${r + 1}.pdf`);
  const sent = await waitEvent((e) => e.type === 'message.sent' && e.id === q.row.id, q.from);
  const [got] = await decryptedAtPeer([q.row.messageId]);
  if (!checkArrived(got, q.sha256)) throw new Error(`round ${r + 1}: the peer got ${JSON.stringify(got)}`);
  const x = { uploadMs: +q.uploadMs.toFixed(1), sentMs: Date.parse(sent.at) - q.enqueuedAt, decryptedMs: got.at - q.enqueuedAt };
  latency.push(x);
  process.stderr.write(`round ${r + 1}: upload ${x.uploadMs} ms, enqueue -> sent ${x.sentMs} ms, -> decrypted at the peer ${x.decryptedMs} ms\n`);
}

// 2. Memory: queued while down, then all sent.
await emulator.client.injectFault(PHONE, { kind: 'upgrade-refused', code: 503 });
const down = waitEvent((e) => e.type === 'account.state' && e.account === 'bench' && e.state === 'reconnecting', daemon.events.length);
await emulator.client.injectFault(PHONE, { kind: 'close' });
await down;
await sleep(1000); // let the close settle before the baseline is read (nothing to wait for here)
sample();
const before = rss[rss.length - 1];
const q = [];
for (let i = 0; i < queued; i++) q.push(await uploadAndQueue(`queued-${i + 1}.pdf`));
sample();
const afterQueued = rss[rss.length - 1];
const states = await Promise.all(q.map(async (x) => (await daemon.client.request('GET', `/v1/messages/${x.row.id}`)).body.state));
if (states.some((s) => s !== 'queued')) throw new Error(`rows not all queued while down: ${states.join(',')}`);
process.stderr.write(`${queued} files queued while down; RSS ${MiB(before[1])} -> ${MiB(afterQueued[1])} MiB\n`);
const from = daemon.events.length;
const opened = waitEvent((e) => e.type === 'account.state' && e.account === 'bench' && e.state === 'open', from);
const sentIds = new Set(q.map((x) => x.row.id));
let sentCount = 0;
const allSent = waitEvent((e) => e.type === 'message.sent' && sentIds.has(e.id) && ++sentCount === queued, from, 300_000);
await emulator.client.clearFaults(PHONE);
const releasedAt = Date.now();
// Skip what is left of the reconnect backoff; the account opens either way.
await daemon.client.request('POST', '/v1/accounts/bench/reconnect').catch(() => {});
const openEvent = await opened;
const lastSent = await allSent;
const arrivedMsgs = await decryptedAtPeer(q.map((x) => x.row.messageId), 300_000);
const doneAt = Date.now();
sample();
await sleep(2000); // the tail of the curve, for the record
clearInterval(sampler);
sample();
const settled = rss[rss.length - 1];

const sending = rss.filter(([t]) => t >= releasedAt - t0 && t <= doneAt - t0);
const peak = sending.reduce((a, b) => (b[1] > a[1] ? b : a));
const arrivedOk = q.every((x, i) => checkArrived(arrivedMsgs[i], x.sha256));
const peerAll = await emulator.client.peerMessages(PEER);
const onceEach = q.every((x) => peerAll.filter((m) => m.id === x.row.messageId).length === 1 && peerAll.find((m) => m.id === x.row.messageId).copies === 1);
const rows = await Promise.all(q.map(async (x) => (await daemon.client.request('GET', `/v1/messages/${x.row.id}`)).body));
const wireSends = rows.map((r) => r.wireSends);
const uploads = (await emulator.client.media()).length; // files on the emulator's media server
const emulatorLatencyMs = await emulator.client.latency().catch(() => null);
await daemon.stop();
await emulator.stop();
rmSync(files, { recursive: true, force: true });

const stats = (xs) => {
  const r = (v) => +v.toFixed(1);
  const max = Math.max(...xs);
  const p95 = percentile(xs, 95);
  return {
    rounds: xs.length,
    p50: r(percentile(xs, 50)),
    p95: r(p95),
    max: r(max),
    p95IsMax: Math.ceil(0.95 * xs.length) === xs.length,
    p99IsMax: xs.length < 100,
    all: xs.map(r),
  };
};
const up = stats(latency.map((x) => x.uploadMs));
const sent = stats(latency.map((x) => x.sentMs));
const dec = stats(latency.map((x) => x.decryptedMs));
const growthQueuedMiB = MiB(afterQueued[1] - before[1]);
const growthPeakMiB = MiB(peak[1] - before[1]);
const heldEveryFileMiB = MiB(queued * size);
const memoryMet = growthPeakMiB < boundMiB && growthQueuedMiB < boundMiB;
const correct = arrivedOk && onceEach && wireSends.every((n) => n === 1) && uploads === rounds + queued;
const fmt = (s) => `p50 ${s.p50} ms, ${s.p95IsMax ? '' : `p95 ${s.p95} ms, `}max ${s.max} ms`;
report(
  'media',
  {
    fileMiB: sizeMiB,
    rounds,
    queued,
    settings: 'pacing off; one account, one peer; documents (application/pdf); emulator in its own process',
    emulatorLatencyMs,
    latency: { uploadMs: up, enqueueToSentMs: sent, enqueueToDecryptedMs: dec },
    memory: {
      // Before phase 1 (just after pairing): what the latency rounds themselves left behind shows as before - this.
      rssAfterPairingMiB: MiB(rss[0][1]),
      rssBeforeMiB: MiB(before[1]),
      rssAfterQueuedMiB: MiB(afterQueued[1]),
      rssPeakSendingMiB: MiB(peak[1]),
      rssSettledMiB: MiB(settled[1]),
      growthQueuedMiB,
      growthPeakMiB,
      boundMiB,
      bound: `2 × one file (${sizeMiB} MiB) per concurrent send (1 per account) + ${FIXED_OVERHEAD_MIB} MiB fixed`,
      heldEveryFileMiB,
      openAfterReleaseMs: Date.parse(openEvent.at) - releasedAt,
      allSentAfterOpenMs: Date.parse(lastSent.at) - Date.parse(openEvent.at),
      allDecryptedAfterOpenMs: Math.max(...arrivedMsgs.map((m) => m.at)) - Date.parse(openEvent.at),
      curve: rss.map(([t, b]) => [t, MiB(b)]),
      marks: { downAtMs: before[0], queuedAtMs: afterQueued[0], releasedAtMs: releasedAt - t0, doneAtMs: doneAt - t0 },
    },
    checks: { decryptedWithSha256: arrivedOk, onceEach, wireSends, uploadsOnMediaServer: uploads, expectedUploads: rounds + queued },
    goal: { rssGrowthMiB: boundMiB, latency: 'reported' },
    met: memoryMet && correct,
  },
  `media, ${sizeMiB} MiB documents, ${rounds} rounds: upload ${fmt(up)}; enqueue -> sent ${fmt(sent)}; enqueue -> decrypted at the peer ${fmt(dec)} ` +
    `(${rounds} rounds each: ${up.p95IsMax ? 'the p95 is the max below 20 rounds, ' : ''}a p99 needs 100); ` +
    `RSS ${MiB(rss[0][1])} MiB after pairing, ${MiB(before[1])} after the rounds; ${queued} queued while down: RSS ${MiB(before[1])} -> ${MiB(afterQueued[1])} MiB queued (+${growthQueuedMiB}), peak ${MiB(peak[1])} MiB while sending (+${growthPeakMiB}; ` +
    `bound ${boundMiB} MiB: ${memoryMet ? 'met' : 'NOT met'}; holding them would be ${heldEveryFileMiB}); ` +
    `${arrivedOk && onceEach ? `all ${queued} decrypted with their sha256, once each` : 'NOT all decrypted once with their sha256'}, wire sends ${[...new Set(wireSends)].join('/')}, uploads ${uploads}/${rounds + queued}`,
);
process.exitCode = memoryMet && correct ? 0 : 1;
