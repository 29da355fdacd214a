// The accounting behind `npm run chaos` and `npm run demo`: what every emulator peer decrypted,
// held against who may receive what. Pure (no I/O), so a test can hand it a world in which
// something went wrong and see that it says so.
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
