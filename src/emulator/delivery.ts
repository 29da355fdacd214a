/**
 * Server-to-companion delivery with an offline queue. Every stanza pushed to a companion is
 * kept in its mailbox until the client acknowledges it (a `<receipt>` for a message, an `<ack>`
 * for a receipt or notification). It is sent at once to an active connection of that device;
 * otherwise, and again after a reconnect if it was never acknowledged, it goes out with
 * `offline="1"` when the client next turns active, followed by `<ib><offline count=N/>`.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import type { Session } from './session.js';
import { SERVER_JID } from './stanza.js';
import type { Companion, User } from './user.js';

/** The mailbox key of a stanza the server pushes (a group's receipts differ by participant). */
export function mailboxKey(node: BinaryNode): string {
  const id = node.attrs.id ?? '';
  return node.tag === 'receipt' ? receiptKey(id, node.attrs.type, node.attrs.participant) : `${node.tag}:${id}`;
}

function receiptKey(id: string, type: string | undefined, participant: string | undefined): string {
  return `receipt:${id}:${type ?? ''}${participant ? `:${participant}` : ''}`;
}

/** Pushes a stanza to one companion; true if an active connection got it now. */
export function deliver(core: EmulatorCore, user: User, companion: Companion, node: BinaryNode): boolean {
  companion.mailbox.set(mailboxKey(node), node);
  let sent = false;
  for (const session of core.sessions.live(user.phone, companion.device)) {
    if (session.active) {
      session.send(node);
      sent = true;
    }
  }
  return sent;
}

/** Pushes a stanza to every companion of a user; true if any got it now. */
export function deliverToAll(core: EmulatorCore, user: User, node: BinaryNode): boolean {
  let sent = false;
  for (const companion of user.companions.values()) sent = deliver(core, user, companion, node) || sent;
  return sent;
}

/** Clears what a client `<ack>` acknowledges. */
export function acknowledgeAck(companion: Companion, ack: BinaryNode): void {
  const cls = ack.attrs.class ?? '';
  const id = ack.attrs.id ?? '';
  companion.acknowledge(cls === 'receipt' ? receiptKey(id, ack.attrs.type, ack.attrs.participant) : `${cls}:${id}`);
}

/** Clears the messages a client `<receipt>` (with its optional `<list><item id>`) acknowledges. */
export function acknowledgeReceipt(companion: Companion, ids: string[]): void {
  for (const id of ids) companion.acknowledge(`message:${id}`);
}

/** Sends the companion's queued stanzas as offline, waits (bounded) for acks, then `<ib><offline>`. */
export async function flushOffline(core: EmulatorCore, session: Session, companion: Companion): Promise<void> {
  const pending = [...companion.mailbox.entries()];
  for (const [, node] of pending) session.send({ ...node, attrs: { ...node.attrs, offline: '1' } });
  if (pending.length > 0) {
    session.event(`delivered ${pending.length} queued stanza(s) as offline`);
    // Baileys handles offline stanzas on a queue and starts buffering events when it sees
    // <ib><offline>; sending the marker after the acks keeps those events from being held back.
    await companion.waitForAcks(
      pending.map(([key]) => key),
      core.settings.offlineAckWaitMs,
    );
  }
  if (session.isOpen) {
    session.send({ tag: 'ib', attrs: { from: SERVER_JID }, content: [{ tag: 'offline', attrs: { count: String(pending.length) } }] });
  }
}
