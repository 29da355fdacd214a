/**
 * A companion's `<message to="…@g.us">`: the server fans it out to the group's members only.
 * The stanza carries pairwise copies (`<participants><to jid><enc pkmsg|msg>`), which hand the
 * sender's key to devices that lack it, and one `<enc type="skmsg">` encrypted with that key.
 * Each member's simulated phone decrypts its pairwise copy, stores the sender key, decrypts the
 * skmsg with it, records the message and sends a receipt from the group with itself as
 * `participant`. Members' real companions get the stanza relayed: their pairwise copy, if any,
 * and the skmsg. A Baileys retry re-send (`participant` on the stanza, one top-level pairwise
 * copy with the message and the sender key) reaches that member only.
 */
import { type BinaryNode, proto } from '@whiskeysockets/baileys';
import { companionAddress } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { deliver, deliverToAll } from './delivery.js';
import type { Group } from './groups.js';
import { mediaNote, readMedia } from './media-read.js';
import { summarise } from './message-content.js';
import { sendRetryReceipt } from './retry-receipts.js';
import type { Session } from './session.js';
import type { SignalMessageType } from './sim-device.js';
import { bytesOf, child, children } from './stanza.js';
import { type Companion, User } from './user.js';

/** The sending account and the companion it sent from. */
interface Sender {
  user: User;
  companion: Companion;
}

/** One message to a group, as the handlers below need it. */
interface GroupSend {
  core: EmulatorCore;
  session: Session;
  sender: Sender;
  group: Group;
  node: BinaryNode;
  id: string;
  /** Pairwise copies by device, `phone:device`. */
  pairwise: Map<string, BinaryNode>;
  skmsg: BinaryNode | undefined;
}

/** Delivers a companion's message to a group (the ack has been sent). */
export async function deliverGroupMessage(core: EmulatorCore, session: Session, sender: Sender, node: BinaryNode, group: Group | undefined): Promise<void> {
  const id = node.attrs.id!;
  if (!group) {
    session.event(`message ${id}: no group ${node.attrs.to}; nobody receives it`);
    return;
  }
  if (!group.has(sender.user)) {
    session.event(`message ${id}: ${sender.user.phone} is not a member of ${group.jid}; nobody receives it`);
    return;
  }
  const skmsg = children(node, 'enc').find((e) => e.attrs.type === 'skmsg');
  const send: GroupSend = { core, session, sender, group, node, id, pairwise: pairwiseCopies(core, session, node), skmsg };
  for (const [device] of send.pairwise) {
    const phone = device.slice(0, device.indexOf(':'));
    if (!group.members.has(phone)) session.event(`message ${id}: ${device} is not a member of ${group.jid}; its copy is dropped`);
    if (device === `${sender.user.phone}:${sender.companion.device}`) session.event(`message ${id}: a copy for the sending device itself is dropped`);
  }
  // A retry re-send is for the one member that asked.
  const retryFor = node.attrs.participant === undefined ? undefined : core.world.resolve(node.attrs.participant)?.user;
  // The members when the message arrived: one added meanwhile does not get it.
  for (const { user } of [...group.members.values()]) {
    if (node.attrs.participant !== undefined && retryFor !== user) continue;
    const phoneCopy = send.pairwise.get(`${user.phone}:0`);
    if (phoneCopy || send.skmsg) {
      // Each member's phone is a device of its own: between two of them the emulator answers
      // other connections, as a server would, rather than make them wait for a large group.
      await core.turns.next();
      await phoneReads(send, user, phoneCopy);
    }
    for (const companion of user.companions.values()) {
      if (user === sender.user && companion.device === sender.companion.device) continue;
      const copy = send.pairwise.get(`${user.phone}:${companion.device}`);
      const encs = [copy, send.skmsg].filter((e): e is BinaryNode => e !== undefined);
      if (encs.length > 0) relay(send, user, companion, encs);
    }
  }
}

/** The pairwise copies of a group stanza, by the device each is for. */
function pairwiseCopies(core: EmulatorCore, session: Session, node: BinaryNode): Map<string, BinaryNode> {
  const copies = new Map<string, BinaryNode>();
  const add = (jid: string, enc: BinaryNode): void => {
    const ref = core.world.resolve(jid);
    if (ref) copies.set(`${ref.user.phone}:${ref.device}`, enc);
    else session.event(`message ${node.attrs.id}: unknown recipient ${jid}`);
  };
  for (const to of children(child(node, 'participants'), 'to')) {
    const enc = child(to, 'enc');
    if (enc && to.attrs.jid) add(to.attrs.jid, enc);
  }
  const retryFor = node.attrs.participant;
  const direct = children(node, 'enc').find((e) => e.attrs.type === 'pkmsg' || e.attrs.type === 'msg');
  if (retryFor && direct) add(retryFor, direct);
  return copies;
}

/**
 * A member's phone reads the message: its pairwise copy first (the sender key, and for a retry
 * the message itself), then the skmsg. Anything it cannot decrypt gets a retry receipt instead.
 */
async function phoneReads(send: GroupSend, member: User, copy: BinaryNode | undefined): Promise<void> {
  const { core, session, sender, group, id } = send;
  const own = member === sender.user;
  const device = sender.companion.device;
  const fail = (why: string): void => {
    session.event(`message ${id}: ${member.phone} ${why}`);
    if (!own) sendRetryReceipt(core, member, sender.user, id, false, `${member.phone} ${why}`, group);
  };
  const armed = own ? null : core.decryptFailures.take(member.phone, id);
  if (armed) {
    const why = `${member.phone} could not decrypt it (failure armed by a test)`;
    if (!armed.hold) sendRetryReceipt(core, member, sender.user, id, false, why, group);
    else {
      core.decryptFailures.hold(member.phone, { sender: sender.user, id, lidAddressed: false, group });
      session.event(`message ${id}: ${why}; its retry receipt is held until released`);
    }
    return;
  }
  let content: proto.IMessage | null = null;
  if (copy) {
    let message: proto.Message;
    try {
      const plaintext = await member.phoneDevice.decrypt(companionAddress(sender.user.phone, device), copy.attrs.type as SignalMessageType, bytesOf(copy)!);
      message = proto.Message.decode(plaintext);
    } catch (error) {
      return fail(`failed to decrypt its pairwise copy: ${(error as Error).message}`);
    }
    const distribution = message.senderKeyDistributionMessage?.axolotlSenderKeyDistributionMessage;
    if (distribution) await member.phoneDevice.senderKeys.process(group.jid, sender.user.phone, device, distribution);
    content = withoutSenderKey(message);
  }
  if (!content && send.skmsg) {
    try {
      const plaintext = await member.phoneDevice.senderKeys.decrypt(group.jid, sender.user.phone, device, bytesOf(send.skmsg)!);
      content = proto.Message.decode(plaintext);
    } catch (error) {
      return fail(`could not decrypt the group copy: ${(error as Error).message}`);
    }
  }
  if (!content) return;
  const entry = { id, from: sender.user.phone, fromDevice: device, group: group.jid, ...summarise(content), ...readMedia(core, content) };
  if (own) {
    const recorded = User.recordCopy(member.ownSent, { ...entry, destination: group.jid });
    session.event(`message ${id}: own phone decrypted the group message (copies=${recorded.copies})${mediaNote(recorded.media)}`);
    core.notices.emit('decrypted', { phone: member.phone, own: true, message: recorded });
    return;
  }
  const recorded = User.recordCopy(member.received, entry);
  session.event(`message ${id}: member ${member.phone} of ${group.jid} decrypted it (copies=${recorded.copies})${mediaNote(recorded.media)}`);
  core.notices.emit('decrypted', { phone: member.phone, own: false, message: recorded });
  sendGroupReceipts(core, group, sender.user, member, id);
}

/** The message without its sender key: null when that was all it carried. */
function withoutSenderKey(message: proto.Message): proto.IMessage | null {
  // A decoded message holds the fields that were set as own properties.
  const { senderKeyDistributionMessage: _key, messageContextInfo: _info, ...rest } = { ...message } as proto.IMessage;
  return Object.values(rest).some((v) => v != null) ? rest : null;
}

/** The member's phone confirms delivery (and reading, if so configured) from the group. */
function sendGroupReceipts(core: EmulatorCore, group: Group, sender: User, member: User, id: string): void {
  if (core.settings.autoReceipt === 'none') return;
  const attrs = { from: group.jid, participant: group.memberJid(member), id, t: unixNow() };
  deliverToAll(core, sender, { tag: 'receipt', attrs });
  if (core.settings.autoReceipt === 'read') deliverToAll(core, sender, { tag: 'receipt', attrs: { ...attrs, type: 'read' } });
}

/** Relays the group stanza to a member's real companion: from the group, the sender as participant. */
function relay(send: GroupSend, user: User, companion: Companion, encs: BinaryNode[]): void {
  const { core, session, sender, group, node, id } = send;
  const attrs: Record<string, string> = {
    id,
    from: group.jid,
    participant: group.memberJid(sender.user, sender.companion.device),
    [group.alternateAttr]: group.alternateJid(sender.user),
    addressing_mode: group.addressingMode,
    t: unixNow(),
    type: node.attrs.type ?? 'text',
    notify: sender.user.name,
  };
  const content: BinaryNode[] = encs.map((enc) => ({ tag: 'enc', attrs: { ...enc.attrs }, content: enc.content }));
  const identity = child(node, 'device-identity');
  if (identity) content.push(identity);
  const sentNow = deliver(core, user, companion, { tag: 'message', attrs, content });
  session.event(`message ${id}: relayed to ${user.phone}:${companion.device} in ${group.jid}${sentNow ? '' : ' (queued)'}`);
}

function unixNow(): string {
  return String(Math.floor(Date.now() / 1000));
}
