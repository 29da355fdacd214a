// The accounting behind `npm run chaos` and `npm run demo`: what every emulator peer decrypted,
// held against who may receive what (checkDeliveries), and what the peers sent, held against the
// daemon's inbox and a stream consumer's deliveries (checkInbox, further down). Both are pure (no
// I/O), so a test can hand them a world in which something went wrong and see that they say so.
//
// Who may receive what:
// - an alert (text starting with ALERT_PREFIX) only an operator;
// - any other message only a peer the sending account may write to: not a number a policy rule
//   forbids, on the account's `allowTo` list when it has one, and nobody at all when the account
//   is in shadow mode (direct messages denied);
// - and only what the daemon accepted from that account for that peer (anything else is
//   `unexpected`).
//
// Duplicates are two different things, counted apart:
// - `peerDuplicates`: one accepted message shown at the peer more than once (re-sent under a new
//   WhatsApp id, or listed twice). A person would see it twice.
// - `wireDuplicates`: extra copies of the same id on the wire (the emulator's `copies` - 1). The
//   emulator shows such a copy once, as WhatsApp clients are assumed to (they store messages by
//   id); README says what that assumption rests on.

/** Prefix of every alert text the daemon's WhatsApp sink sends. */
export const ALERT_PREFIX = '[wa-supervisor]';

/**
 * Checks what the peers received.
 * @param {object} world who may receive what:
 *   `accounts`: [{ id, phone, allowTo?: phone[], shadow?: boolean }],
 *   `operators`: phone[], `forbidden`: phone[] (refused to every account by a policy rule)
 * @param {Array<{account: string, to: string, messageId: string, text?: string}>} accepted sends the daemon accepted
 * @param {Record<string, Array<{id: string, from: string, text: string|null, copies: number}>>} received per peer phone, what it decrypted (GET /peers/<phone>/messages)
 */
export function checkDeliveries(world, accepted, received) {
  const operators = new Set(world.operators ?? []);
  const forbidden = new Set(world.forbidden ?? []);
  const byPhone = new Map((world.accounts ?? []).map((a) => [a.phone, a]));
  const findings = [];
  const counts = { alertsToOperators: 0, alertsToPeers: 0, policyViolations: 0, unexpected: 0, wireDuplicates: 0 };

  // Accepted sends by where they should appear: (account, peer) -> by id and by text.
  const shownTimes = new Map(); // accepted entry -> how many entries at the peer are it
  const wanted = new Map();
  for (const a of accepted) {
    shownTimes.set(a, 0);
    const k = `${a.account}\u0000${a.to}`;
    if (!wanted.has(k)) wanted.set(k, { byId: new Map(), byText: new Map() });
    const w = wanted.get(k);
    if (a.messageId) w.byId.set(a.messageId, a);
    if (a.text != null) w.byText.set(a.text, a);
  }

  for (const [peer, messages] of Object.entries(received)) {
    for (const m of messages) {
      counts.wireDuplicates += Math.max(0, (m.copies ?? 1) - 1);
      const note = (kind, reason) => findings.push({ kind, peer, from: m.from, id: m.id, text: m.text, reason });
      if ((m.text ?? '').startsWith(ALERT_PREFIX)) {
        if (operators.has(peer)) counts.alertsToOperators++;
        else {
          counts.alertsToPeers++;
          note('alertToPeer', `${peer} is not an operator`);
        }
        continue;
      }
      const account = byPhone.get(m.from);
      if (!account) {
        counts.unexpected++;
        note('unexpected', `from ${m.from}, which is none of the accounts`);
        continue;
      }
      const refused = [];
      if (forbidden.has(peer)) refused.push(`a policy rule forbids ${peer}`);
      if (account.allowTo && !account.allowTo.includes(peer)) refused.push(`${peer} is not in allowTo of ${account.id}`);
      if (account.shadow) refused.push(`${account.id} is in shadow mode`);
      if (refused.length) {
        counts.policyViolations++;
        note('policyViolation', refused.join('; '));
        continue;
      }
      const w = wanted.get(`${account.id}\u0000${peer}`);
      const match = w && (w.byId.get(m.id) ?? (m.text != null ? w.byText.get(m.text) : undefined));
      if (!match) {
        counts.unexpected++;
        note('unexpected', `nothing ${account.id} was asked to send to ${peer} matches it`);
        continue;
      }
      shownTimes.set(match, shownTimes.get(match) + 1);
    }
  }

  let lost = 0;
  let peerDuplicates = 0;
  for (const [a, n] of shownTimes) {
    if (n === 0) {
      lost++;
      findings.push({ kind: 'lost', peer: a.to, from: a.account, id: a.messageId, text: a.text ?? null, reason: 'accepted, never shown at the peer' });
    } else if (n > 1) {
      peerDuplicates += n - 1;
      findings.push({ kind: 'peerDuplicate', peer: a.to, from: a.account, id: a.messageId, text: a.text ?? null, reason: `shown ${n} times` });
    }
  }
  return { sent: accepted.length, delivered: accepted.length - lost, lost, peerDuplicates, ...counts, findings };
}

/** Reads what every peer that decrypted anything received, plus `alsoPeers` (which may have received nothing). */
export async function collectReceived(emulatorClient, alsoPeers = []) {
  const phones = new Set([...(await emulatorClient.peers()).map((p) => p.phone), ...alsoPeers]);
  const received = {};
  for (const phone of phones) received[phone] = await emulatorClient.peerMessages(phone);
  return received;
}

// The inbound half: what the emulator's peers sent to the accounts, held against the daemon's
// inbox, and what a stream consumer was handed, held against its acknowledgements.
//
// - `inboundLost`: a message a peer sent with no inbox row (account and id); of those,
//   `inboundLostReceipted` the emulator shows as receipted (`delivered`/`read`): the daemon told
//   WhatsApp it had the message and does not. That one must be 0 even in principle, since the
//   row is committed before the receipt goes out.
// - `inboundDuplicates`: extra rows of one message (account and id): the same chat twice, or
//   the same message under two spellings of the chat (a LID and a phone-number JID).
// - `inboundWrongStatus`: `ignored` for a sender on the account's `allowFrom`, or readable for
//   one who is not.
// - `consumerMissed`: a readable row (ok or undecryptable) in the final inbox the consumer was
//   never handed. `consumerDuplicatesAfterAck`: a row handed at or below the cursor the reader
//   had already had acknowledged (the ack answered) when it arrived. `consumerGaps`: within one
//   connection, a readable row between two consecutive deliveries that was skipped (or a
//   delivery going back in cursor order). `consumerIgnored`: an `ignored` row handed to it.
//   `consumerRedelivered` (allowed, counted): unacknowledged rows handed again after a reconnect.

/** The statuses a consumer is offered. */
const READABLE = new Set(['ok', 'undecryptable']);

/**
 * Checks the inbox against what the peers sent, and a stream consumer's deliveries against the inbox.
 * @param {object} world `accounts`: [{ id, phone, allowFrom?: phone[] }]
 * @param {Array<{from: string, id: string, to: string, text: string, status: string}>} sent what the peers sent (GET /peers/<phone>/sent, with `from`)
 * @param {Array<{cursor: string, id: string, account: string, chat: string, from: string, status: string, text?: string|null}>} inbox every inbox row (GET /v1/inbox?status=all, all pages)
 * @param {{accounts?: string[], deliveries: Array<{cursor: string, id: string, account: string, chat: string, status?: string, connection: number, committed: string|number}>}} [consumer]
 */
export function checkInbox(world, sent, inbox, consumer) {
  const byPhone = new Map((world.accounts ?? []).map((a) => [a.phone, a]));
  const findings = [];
  const note = (kind, fields, reason) => findings.push({ kind, account: fields.account ?? null, chat: fields.chat ?? null, id: fields.id ?? null, cursor: fields.cursor ?? null, text: fields.text ?? null, reason });

  // Rows by message: (account, id); one message should be one row.
  const rowsOf = new Map();
  for (const row of inbox) {
    const k = `${row.account}\u0000${row.id}`;
    if (!rowsOf.has(k)) rowsOf.set(k, []);
    rowsOf.get(k).push(row);
  }
  let inboundDuplicates = 0;
  for (const rows of rowsOf.values()) {
    if (rows.length < 2) continue;
    inboundDuplicates += rows.length - 1;
    const chats = [...new Set(rows.map((r) => r.chat))];
    const reason = chats.length > 1 ? `stored ${rows.length} times, under ${chats.join(' and ')}` : `stored ${rows.length} times in ${chats[0]}`;
    note('inboundDuplicate', { ...rows[1], cursor: rows.map((r) => r.cursor).join(',') }, reason);
  }

  const counts = { inboundSent: 0, inboundStored: 0, inboundLost: 0, inboundLostReceipted: 0, inboundIgnored: 0, inboundUndecryptable: 0, inboundWrongStatus: 0 };
  const expected = new Set();
  for (const s of sent) {
    const account = byPhone.get(s.to);
    if (!account) continue;
    counts.inboundSent++;
    const k = `${account.id}\u0000${s.id}`;
    expected.add(k);
    const rows = rowsOf.get(k);
    if (!rows) {
      counts.inboundLost++;
      const receipted = s.status === 'delivered' || s.status === 'read';
      if (receipted) counts.inboundLostReceipted++;
      note('inboundLost', { account: account.id, id: s.id, text: s.text }, `${s.from} sent it (emulator status ${s.status}${receipted ? ': receipted, so the daemon said it had it' : ''}); no inbox row`);
      continue;
    }
    counts.inboundStored++;
    const row = rows[0];
    if (row.status === 'ignored') counts.inboundIgnored++;
    if (row.status === 'undecryptable') counts.inboundUndecryptable++;
    const allowed = !account.allowFrom || account.allowFrom.includes(s.from);
    if (allowed === (row.status === 'ignored')) {
      counts.inboundWrongStatus++;
      note('inboundWrongStatus', row, `${s.from} is ${allowed ? '' : 'not '}on allowFrom of ${account.id}, stored as ${row.status}`);
    }
  }
  let inboxUnexpected = 0;
  for (const [k, rows] of rowsOf) {
    if (expected.has(k)) continue;
    inboxUnexpected++;
    note('inboxUnexpected', rows[0], 'no peer sent this message to this account');
  }

  const result = { ...counts, inboundDuplicates, inboxUnexpected };
  if (!consumer) return { ...result, findings };

  const mine = (row) => READABLE.has(row.status) && (!consumer.accounts?.length || consumer.accounts.includes(row.account));
  const readable = inbox.filter(mine).map((r) => Number(r.cursor)).sort((a, b) => a - b);
  const statusAt = new Map(inbox.map((r) => [Number(r.cursor), r.status]));
  // Readable rows with lo < cursor < hi.
  const between = (lo, hi) => {
    const first = (x) => {
      let a = 0;
      let b = readable.length;
      while (a < b) {
        const m = (a + b) >> 1;
        if (readable[m] <= x) a = m + 1;
        else b = m;
      }
      return a;
    };
    return Math.max(0, first(hi - 1) - first(lo));
  };
  const c = { consumerReceived: consumer.deliveries.length, consumerMissed: 0, consumerDuplicatesAfterAck: 0, consumerRedelivered: 0, consumerGaps: 0, consumerIgnored: 0 };
  const handed = new Set();
  const lastOn = new Map(); // connection -> last cursor handed on it
  for (const d of consumer.deliveries) {
    const cursor = Number(d.cursor);
    if (cursor <= Number(d.committed)) {
      c.consumerDuplicatesAfterAck++;
      note('consumerDuplicateAfterAck', d, `handed again on connection ${d.connection} after cursor ${d.committed} was acknowledged`);
    } else if (handed.has(cursor)) c.consumerRedelivered++;
    if (d.status === 'ignored' || statusAt.get(cursor) === 'ignored') {
      c.consumerIgnored++;
      note('consumerIgnored', d, 'an ignored message (sender not on allowFrom) was handed to the consumer');
    }
    const previous = lastOn.get(d.connection);
    if (previous !== undefined) {
      if (cursor <= previous) {
        c.consumerGaps++;
        note('consumerGap', d, `handed after cursor ${previous} on the same connection (out of order)`);
      } else {
        const skipped = between(previous, cursor);
        if (skipped) {
          c.consumerGaps += skipped;
          note('consumerGap', d, `connection ${d.connection} went from cursor ${previous} to ${cursor}, skipping ${skipped} readable row(s)`);
        }
      }
    }
    lastOn.set(d.connection, cursor);
    handed.add(cursor);
  }
  for (const row of inbox) {
    if (!mine(row) || handed.has(Number(row.cursor))) continue;
    c.consumerMissed++;
    note('consumerMissed', row, 'a readable row never handed to the consumer');
  }
  return { ...result, ...c, findings };
}

/** What `peers` sent to the accounts, with `from` (the emulator's truth for checkInbox). */
export async function collectSent(emulatorClient, peers) {
  const sent = [];
  for (const from of peers) for (const m of await emulatorClient.sentMessages(from)) sent.push({ ...m, from });
  return sent;
}

/** Every inbox row, every status, oldest first (GET /v1/inbox, paged). */
export async function collectInbox(daemonClient) {
  const rows = [];
  let after = '0';
  for (;;) {
    const page = (await daemonClient.request('GET', `/v1/inbox?status=all&limit=1000&after=${after}`)).body;
    rows.push(...page.messages);
    if (page.messages.length < 1000) return rows;
    after = page.next;
  }
}

/**
 * Double ownership in a cluster (chaos --hosts): per account, the time spans each daemon ran it
 * (from a state other than stopped, needs_pairing, conflict or forbidden to the next such state,
 * or to the daemon's kill), from every daemon's own account.state events on one host's clock; two
 * spans of one account on two daemons that overlap are a double ownership. Also counts the 440
 * closes any daemon saw before the conflict the run injects at the end on `finalConflictAccount`.
 * `daemons`: [{ id, events, killedAt: [ms…] }].
 */
export function checkOwnership(daemons, finalConflictAccount) {
  const inactive = new Set(['stopped', 'needs_pairing', 'conflict', 'forbidden']);
  const finalAt = Math.min(
    ...daemons.flatMap((d) => d.events.filter((e) => e.type === 'account.state' && e.account === finalConflictAccount && e.state === 'conflict').map((e) => Date.parse(e.at))),
    Infinity,
  );
  const spans = new Map(); // account -> [{ daemon, from, to }]
  let conflicts = 0;
  for (const d of daemons) {
    const running = new Map(); // account -> since
    const kills = [...d.killedAt].sort((a, b) => a - b);
    const end = (account, at) => {
      const from = running.get(account);
      if (from === undefined) return;
      running.delete(account);
      spans.set(account, [...(spans.get(account) ?? []), { daemon: d.id, from, to: at }]);
    };
    const killUpTo = (at) => {
      while (kills.length && kills[0] <= at) {
        const k = kills.shift();
        for (const account of [...running.keys()]) end(account, k);
      }
    };
    for (const e of d.events) {
      const at = Date.parse(e.at);
      killUpTo(at);
      if (e.type === 'account.close' && e.code === 440 && !(e.account === finalConflictAccount && at >= finalAt - 1000)) conflicts++;
      if (e.type !== 'account.state' || !e.account) continue;
      const active = !inactive.has(String(e.state));
      if (active && !running.has(e.account)) running.set(e.account, at);
      if (!active) end(e.account, at);
    }
    killUpTo(Infinity);
    for (const account of [...running.keys()]) end(account, Infinity);
  }
  const overlaps = [];
  for (const [account, list] of spans) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [a, b] = [list[i], list[j]];
        if (a.daemon !== b.daemon && a.from < b.to && b.from < a.to) overlaps.push(`${account} on ${a.daemon} and ${b.daemon} from ${new Date(Math.max(a.from, b.from)).toISOString()}`);
      }
    }
  }
  return { overlaps, conflicts };
}
