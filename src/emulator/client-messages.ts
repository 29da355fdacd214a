/**
 * A `<message>` from a companion: the server acks it, then hands each `<to>` copy to its
 * device. Simulated phones (device 0) decrypt it with libsignal (a peer reads the message;
 * the sender's own phone reads the device-sent copy) and the peer answers with a receipt.
 * A media message's file is fetched from the media store and checked (media-read.ts).
 * Copies for real companions of any user are relayed to them as a real server would. A message
 * to a group goes to group-messages.ts.
 */
import { type BinaryNode, proto } from '@whiskeysockets/baileys';
import { accountOf, companionAddress } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { deliver, deliverToAll } from './delivery.js';
import { deliverGroupMessage } from './group-messages.js';
import { isGroupJid } from './groups.js';
import { mediaNote, readMedia } from './media-read.js';
import { summarise } from './message-content.js';
import { sendRetryReceipt } from './retry-receipts.js';
import type { Session } from './session.js';
import type { SignalMessageType } from './sim-device.js';
import { bytesOf, child, children } from './stanza.js';
import { type Companion, User } from './user.js';

interface Target {
  jid: string;
  enc: BinaryNode;
}

/** Acks a client message at once; its copies are delivered in this connection's delivery order, one per turn of the loop. */
export function handleClientMessage(core: EmulatorCore, session: Session, node: BinaryNode): void {
  const id = node.attrs.id;
  const to = node.attrs.to;
  const dropAck = core.faults.takeAckDrop(session.phone);
  if (!dropAck) session.send({ tag: 'ack', attrs: { class: 'message', id: id ?? '', from: to ?? '', t: unixNow() } });
  else {
    session.event(`fault applied: ack of message ${id ?? '?'} dropped`);
    if (dropAck.then === 'terminate') session.terminate('fault: ack-drop');
  }
  const sender = accountOf(core, session);
  if (!sender || !id || !to) {
    session.event(`message ${id ?? '?'} ignored: ${sender ? 'no id or to' : 'connection is not logged in'}`);
    return;
  }
  if (isGroupJid(to)) {
    session.deliverInOrder(() => deliverGroupMessage(core, session, sender, node, core.groups.get(to)));
    return;
  }
  const targets: Target[] = children(child(node, 'participants'), 'to').flatMap((t) => {
    const enc = child(t, 'enc');
    return enc && t.attrs.jid ? [{ jid: t.attrs.jid, enc }] : [];
  });
  for (const enc of children(node, 'enc')) targets.push({ jid: to, enc });
  if (targets.length === 0) session.event(`message ${id} carries no encrypted copy for anyone; nobody receives it`);
  session.deliverInOrder(async () => {
    for (const target of targets) {
      await core.turns.next();
      await deliverCopy(core, session, sender, node, target);
    }
  });
}

async function deliverCopy(
  core: EmulatorCore,
  session: Session,
  sender: { user: User; companion: Companion },
  node: BinaryNode,
  target: Target,
): Promise<void> {
  const id = node.attrs.id!;
  const ref = core.world.resolve(target.jid);
  const type = target.enc.attrs.type;
  const ciphertext = bytesOf(target.enc);
  if (!ref || !ciphertext) {
    session.event(`message ${id}: unknown recipient ${target.jid}`);
    return;
  }
  if (ref.device !== 0) {
    const companion = ref.user.companions.get(ref.device);
    if (companion) relay(core, session, sender.user, node, target, ref.user, companion);
    else session.event(`message ${id}: no device ${target.jid}`);
    return;
  }
  if (type !== 'pkmsg' && type !== 'msg') {
    session.event(`message ${id}: ${type ?? 'untyped'} copies to a person are not decrypted`);
    return;
  }
  const lidAddressed = node.attrs.to!.endsWith('@lid');
  // A peer's phone that cannot decrypt asks for the message again, as a real phone does.
  const armed = ref.user !== sender.user ? core.decryptFailures.take(ref.user.phone, id) : null;
  if (armed) {
    const why = `${target.jid} could not decrypt it (failure armed by a test)`;
    if (!armed.hold) sendRetryReceipt(core, ref.user, sender.user, id, lidAddressed, why);
    else {
      core.decryptFailures.hold(ref.user.phone, { sender: sender.user, id, lidAddressed });
      session.event(`message ${id}: ${why}; its retry receipt is held until released`);
    }
    return;
  }
  let message: proto.Message;
  try {
    const plaintext = await ref.user.phoneDevice.decrypt(companionAddress(sender.user.phone, sender.companion.device), type as SignalMessageType, ciphertext);
    message = proto.Message.decode(plaintext);
  } catch (error) {
    session.event(`message ${id}: ${target.jid} failed to decrypt: ${(error as Error).message}`);
    if (ref.user !== sender.user) sendRetryReceipt(core, ref.user, sender.user, id, lidAddressed, `${target.jid} failed to decrypt it`);
    return;
  }
  const base = { id, from: sender.user.phone, fromDevice: sender.companion.device };
  if (ref.user === sender.user) {
    const sent = message.deviceSentMessage;
    const content = sent?.message ?? message;
    const entry = User.recordCopy(ref.user.ownSent, { ...base, ...summarise(content), ...readMedia(core, content), destination: sent?.destinationJid ?? undefined });
    session.event(`message ${id}: own phone decrypted the device-sent copy (copies=${entry.copies})${mediaNote(entry.media)}`);
    core.notices.emit('decrypted', { phone: ref.user.phone, own: true, message: entry });
    return;
  }
  const entry = User.recordCopy(ref.user.received, { ...base, ...summarise(message), ...readMedia(core, message) });
  session.event(`message ${id}: peer ${ref.user.phone} decrypted it (copies=${entry.copies})${mediaNote(entry.media)}`);
  core.notices.emit('decrypted', { phone: ref.user.phone, own: false, message: entry });
  sendReceipts(core, sender.user, ref.user, id, lidAddressed);
}

/** The peer's phone confirms delivery (and reading, if so configured) to every sender device. */
function sendReceipts(core: EmulatorCore, sender: User, peer: User, id: string, lidAddressed: boolean): void {
  if (core.settings.autoReceipt === 'none') return;
  const from = lidAddressed ? peer.lidJid : peer.jid;
  deliverToAll(core, sender, { tag: 'receipt', attrs: { from, id, t: unixNow() } });
  if (core.settings.autoReceipt === 'read') deliverToAll(core, sender, { tag: 'receipt', attrs: { from, id, t: unixNow(), type: 'read' } });
}

/** Forwards one copy to a real companion, addressed the way its client expects. */
function relay(core: EmulatorCore, session: Session, sender: User, node: BinaryNode, target: Target, user: User, companion: Companion): void {
  const attrs: Record<string, string> = {
    id: node.attrs.id!,
    from: `${sender.phone}:${session.device}@s.whatsapp.net`,
    t: unixNow(),
    type: node.attrs.type ?? 'text',
    notify: sender.name,
  };
  if (user === sender) attrs.recipient = node.attrs.to!;
  const content: BinaryNode[] = [{ tag: 'enc', attrs: { ...target.enc.attrs }, content: target.enc.content }];
  const identity = child(node, 'device-identity');
  if (identity) content.push(identity);
  const sentNow = deliver(core, user, companion, { tag: 'message', attrs, content });
  session.event(`message ${attrs.id}: relayed to ${user.phone}:${companion.device}${sentNow ? '' : ' (queued)'}`);
}

function unixNow(): string {
  return String(Math.floor(Date.now() / 1000));
}
