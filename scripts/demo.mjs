// `npm run demo`: the whole system on this machine, no WhatsApp needed. The emulator and the
// daemon run as separate processes with a temporary state directory; two accounts are paired
// through the real pairing flow; a policy puts one in shadow mode and gives the other an allowTo
// list; an operator chat gets the alerts. For about a minute messages flow while faults hit the
// connections, with a live status table. The summary says what was sent, what the peers saw, what
// was refused and where alerts went; exit 0 only if nothing was lost or shown twice.
// Usage: npm run demo [-- --seconds 60] [-- --json]
import { parseArgs } from 'node:util';
import { pairAccount, sleep, startDaemon, startEmulator } from '../bench/lib.mjs';
import { ALERT_PREFIX, checkDeliveries, collectReceived } from './delivery-check.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, json: { type: 'boolean', default: false } } });
const seconds = Math.max(20, Number(values.seconds));
const json = values.json;
const tty = process.stdout.isTTY && !json;
const say = (line) => {
  if (!json) process.stdout.write(`${line}\n`);
};

const SALES = '15550100001';
const SUPPORT = '15550100002';
const OPERATOR = '15550109999';
const CUSTOMERS = ['15550200001', '15550200002'];
const INVENTED = '15550299999'; // not on sales' allowTo: an agent's invented number
const SUPPORT_PEER = '15550200003';

say('starting the WhatsApp emulator and the daemon (separate processes, temporary state)...');
const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {
  keepalive: { intervalMs: 1000, probeDeadlineMs: 700 },
  reconnect: { initialMs: 300, maxMs: 2000 },
  connectTimeoutMs: 5000,
  pacing: { perMinute: 600, jitterMs: 0 },
  operators: [`+${OPERATOR}`],
  policy: { default: 'allow', rules: [{ action: 'deny', name: 'shadow-mode', match: { account: 'support', chatType: 'direct' } }] },
  alerts: { sinks: [{ type: 'whatsapp', account: 'sales', to: [OPERATOR] }] },
  accounts: [
    { id: 'sales', wsUrl: emulator.url, allowTo: [...CUSTOMERS, OPERATOR] },
    { id: 'support', wsUrl: emulator.url },
  ],
});

const pair = (id, phone) =>
  pairAccount(daemon, emulator, id, phone, (e, firstQr) => {
    if (e.type === 'qr' && firstQr) say(`  ${id}: QR shown; the emulator scans it as the phone ${phone}`);
    if (e.type === 'paired') say(`  ${id}: paired as ${e.jid}`);
  });
say('pairing two accounts through the real pairing flow:');
await pair('sales', SALES);
await pair('support', SUPPORT);
say('policy: support is in shadow mode (reads, never replies); sales may only write to its allowTo list; alerts go to the operator chat only');

const accepted = []; // {account, to, messageId, text}
const denied = [];
const faults = [];
let seq = 0;
async function send(account, to, text) {
  try {
    const r = await daemon.client.request('POST', '/v1/messages', { account, to, text, idempotencyKey: `demo-${seq}` });
    if (r.body.state === 'denied') denied.push({ account, to, reason: r.body.reason });
    else accepted.push({ account, to, messageId: r.body.messageId, text });
  } catch (err) {
    faults.push(`send refused: ${err.message}`);
  }
}

const plan = [
  [0.12, 'sales', { kind: 'app-silent' }, '408-style silence (app-silent)'],
  [0.25, 'support', { kind: 'black-hole' }, 'TCP black hole'],
  [0.38, 'sales', { kind: 'close' }, '428 connection closed'],
  [0.5, 'support', { kind: 'stream-error', code: 515 }, '515 restart required'],
  [0.62, 'sales', 'idle', 'server idle window of 3 s (the keepalive should keep it open)'],
  [0.75, 'sales', { kind: 'stream-error', code: 503 }, '503 unavailable'],
  [0.9, 'support', { kind: 'replace' }, '440 replaced by another session'],
];
const phoneOf = { sales: SALES, support: SUPPORT };

let status = null;
let drawn = 0;
function draw(elapsed) {
  if (!status) return;
  const rows = status.accounts.map((a) => {
    const q = a.queue ? a.queue.queued + a.queue.sending + a.queue.unknown : 0;
    const close = a.lastClose ? `${a.lastClose.code ?? a.lastClose.name}` : '-';
    return `  ${a.id.padEnd(8)} ${a.state.padEnd(14)} queue ${String(q).padStart(4)}   last close ${close.padEnd(10)} keepalive max gap ${a.keepalive ? `${a.keepalive.largestSilentGapMs} ms` : '-'}`;
  });
  const alerts = daemon.events.filter((e) => e.type === 'alert').length;
  const lines = [
    `t=${String(Math.round(elapsed)).padStart(3)} s   sent ${accepted.length}   denied by policy ${denied.length}   alerts ${alerts}`,
    ...rows,
    `  last fault: ${faults[faults.length - 1] ?? '-'}`,
  ];
  if (tty && drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
  process.stdout.write(`${lines.join('\n')}\n`);
  drawn = lines.length;
}

say(`sending messages for ${seconds} s while faults hit the connections:`);
const t0 = Date.now();
let next = 0;
let lastDraw = 0;
while (Date.now() - t0 < seconds * 1000) {
  const elapsed = (Date.now() - t0) / 1000;
  while (next < plan.length && elapsed >= plan[next][0] * seconds) {
    const [, account, fault, label] = plan[next++];
    faults.push(`${account}: ${label}`);
    if (fault === 'idle') {
      await emulator.client.setIdleWindow(3000, phoneOf[account]);
      setTimeout(() => emulator.client.setIdleWindow(0, phoneOf[account]).catch(() => {}), 8000).unref();
    } else await emulator.client.injectFault(phoneOf[account], fault).catch(() => {});
  }
  seq++;
  if (seq % 7 === 0) await send('sales', INVENTED, `invented number ${seq}`);
  else if (seq % 5 === 0) await send('support', SUPPORT_PEER, `shadow reply ${seq}`);
  else await send('sales', CUSTOMERS[seq % 2], `hello ${seq}`);
  if (Date.now() - lastDraw > (tty ? 500 : 5000)) {
    status = (await daemon.client.request('GET', '/v1/status')).body;
    if (!json) draw(elapsed);
    lastDraw = Date.now();
  }
  await sleep(120);
}

say('waiting for the queue to drain...');
// Who may receive what; every peer that decrypted anything is checked against it.
const world = {
  accounts: [
    { id: 'sales', phone: SALES, allowTo: [...CUSTOMERS, OPERATOR] },
    { id: 'support', phone: SUPPORT, shadow: true },
  ],
  operators: [OPERATOR],
};
const knownPeers = [...CUSTOMERS, INVENTED, SUPPORT_PEER, OPERATOR];
const conflictAlertArrived = (received) => (received[OPERATOR] ?? []).some((m) => (m.text ?? '').startsWith(ALERT_PREFIX) && (m.text ?? '').includes('account support was replaced'));
const deadline = Date.now() + 60_000;
let received;
let check;
for (;;) {
  received = await collectReceived(emulator.client, knownPeers);
  check = checkDeliveries(world, accepted, received);
  if ((check.lost === 0 && conflictAlertArrived(received)) || Date.now() > deadline) break;
  await sleep(500);
}

const alertsList = (await daemon.client.request('GET', '/v1/alerts')).body;
const raised = alertsList.recent.filter((n) => n.type === 'alert').map((n) => `${n.alert.code}${n.alert.account ? `(${n.alert.account})` : ''}`);
const finalStatus = (await daemon.client.request('GET', '/v1/status')).body;
await daemon.stop();
await emulator.stop();

const summary = {
  seconds,
  sent: check.sent,
  deliveredAtPeer: check.delivered,
  lost: check.lost,
  // Shown twice at a peer: the same outbox message under a new WhatsApp id (or listed twice).
  peerDuplicates: check.peerDuplicates,
  // Extra copies of the same id on the wire; the peer shows them once (an assumption about WhatsApp clients, see README).
  wireDuplicates: check.wireDuplicates,
  deniedByPolicy: denied.length,
  reachedRefusedPeers: check.policyViolations,
  unexpectedAtPeers: check.unexpected,
  peersChecked: Object.keys(received).length,
  faults: plan.map((p) => `${p[1]}: ${p[3]}`),
  alertsRaised: raised,
  alertsToOperatorChat: check.alertsToOperators,
  alertsToOtherChats: check.alertsToPeers,
  accounts: finalStatus.accounts.map((a) => ({ id: a.id, state: a.state, closesByCode: a.closesByCode })),
};
const ok = check.lost === 0 && check.peerDuplicates === 0 && check.policyViolations === 0 && check.unexpected === 0 && check.alertsToPeers === 0;
if (json) process.stdout.write(`${JSON.stringify({ ...summary, ok })}\n`);
else {
  say('');
  for (const f of check.findings.slice(0, 20)) say(`  ${f.kind}: at ${f.peer} from ${f.from} "${f.text}": ${f.reason}`);
  say(`sent ${summary.sent}, delivered at the peer ${summary.deliveredAtPeer}, lost ${summary.lost}`);
  say(`shown twice at a peer (same message under a new id): ${summary.peerDuplicates}; same-id copies on the wire: ${summary.wireDuplicates} (shown once, as WhatsApp clients are assumed to; see README)`);
  say(`denied by policy ${denied.length} (invented number, shadow-mode replies); messages that reached a refused peer: ${summary.reachedRefusedPeers}; unexpected messages: ${summary.unexpectedAtPeers} (${summary.peersChecked} peers checked)`);
  say(`alerts raised: ${raised.join(', ') || 'none'}; delivered to the operator chat: ${summary.alertsToOperatorChat}; to anyone else: ${summary.alertsToOtherChats}`);
  say(`closes per account: ${summary.accounts.map((a) => `${a.id} ${JSON.stringify(a.closesByCode)} now ${a.state}`).join('; ')}`);
  say(ok ? 'OK: nothing lost, nothing shown twice, nothing reached a refused peer, alerts only to the operator' : 'FAILED: see the figures above');
}
process.exitCode = ok ? 0 : 1;
