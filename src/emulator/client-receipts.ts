/**
 * `<receipt>` and `<ack>` from a companion. Both acknowledge what the server pushed (clearing
 * the offline queue). A receipt for a message a simulated peer sent updates that message's
 * status; one addressed to another account is relayed to that account's companions. In a group
 * the receipt is for the member named as `participant`.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { accountOf } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { acknowledgeAck, acknowledgeReceipt, deliverToAll } from './delivery.js';
import { isGroupJid } from './groups.js';
import { resendToCompanion } from './inbound-retry.js';
import { handleMediaRetryRequest } from './media-retry.js';
import type { Session } from './session.js';
import { child, children } from './stanza.js';
import type { SentMessage } from './user.js';

/** Receipt types that do not travel to the other party. */
const LOCAL_RECEIPT_TYPES = new Set(['sender', 'hist_sync', 'peer_msg', 'retry', 'server-error', 'inactive-self', 'read-self']);

/** Handles a client receipt: acknowledge, update status, relay, and ack it. */
export function handleClientReceipt(core: EmulatorCore, session: Session, node: BinaryNode): void {
  const id = node.attrs.id ?? '';
  const ids = [id, ...children(child(node, 'list'), 'item').map((item) => item.attrs.id ?? '')];
  const type = node.attrs.type;
  const account = accountOf(core, session);
  if (account) acknowledgeReceipt(account.companion, ids);
  if (handleMediaRetryRequest(core, session, node)) {
    // Answered with a mediaretry notification; the receipt itself is only acknowledged.
  } else if (type === 'retry') {
    // The peer's phone sends the message again, encrypted anew, for the device that asked.
    void resendToCompanion(core, session, node).then(
      (resent) => {
        if (!resent) session.event(`client asked for a retry of ${id}, which no simulated peer sent it (not re-sent)`);
      },
      (error: unknown) => session.event(`client asked for a retry of ${id}; re-sending it failed: ${(error as Error).message}`),
    );
  }
  // In a group the receipt names the group, and the member whose message it was as participant.
  const group = isGroupJid(node.attrs.to) ? core.groups.get(node.attrs.to) : undefined;
  const author = group ? node.attrs.participant : node.attrs.to;
  const target = author ? core.world.resolve(author) : undefined;
  if (target && account && target.user !== account.user) {
    // A retry receipt says the message could not be decrypted: it was not delivered.
    if (type !== 'retry') {
      for (const messageId of ids) {
        const sent = target.user.sent.get(messageId);
        if (sent) sent.status = advance(sent.status, type);
      }
    }
    if (target.user.companions.size > 0 && !LOCAL_RECEIPT_TYPES.has(type ?? '')) {
      const from: Record<string, string> = group ? { from: group.jid, participant: group.memberJid(account.user) } : { from: account.user.jid };
      const attrs: Record<string, string> = { ...from, id, t: String(Math.floor(Date.now() / 1000)) };
      if (type && type !== 'inactive') attrs.type = type;
      deliverToAll(core, target.user, { tag: 'receipt', attrs, content: node.content });
    }
  }
  const ack: Record<string, string> = { class: 'receipt', id, from: node.attrs.to ?? '' };
  if (type) ack.type = type;
  session.send({ tag: 'ack', attrs: ack });
}

/** Handles a client ack: it acknowledges a pushed receipt, notification or (with an error) message. */
export function handleClientAck(core: EmulatorCore, session: Session, node: BinaryNode): void {
  const account = accountOf(core, session);
  if (account) acknowledgeAck(account.companion, node);
  if (node.attrs.error) session.event(`client rejected ${node.attrs.class} ${node.attrs.id} with error ${node.attrs.error}`);
}

function advance(current: SentMessage['status'], type: string | undefined): SentMessage['status'] {
  if (type === 'read' || type === 'read-self' || type === 'played') return 'read';
  if (current === 'read') return current;
  return 'delivered';
}
