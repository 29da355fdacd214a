/**
 * A simulated member sends a text (or a file, see peer-media.ts) to a group: its phone encrypts
 * it once with its own sender key (`skmsg`) and, for each account companion in the group that
 * does not have that key yet, a pairwise copy carrying it (the first message starts a Signal
 * session from the companion's uploaded keys). The server delivers one stanza per companion, from the group with
 * the member as `participant`, or queues it for the next login. Other simulated members' phones
 * do not read it (phones only read what accounts send).
 */
import { type BinaryNode, proto } from '@whiskeysockets/baileys';
import { companionAddress } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { deliver } from './delivery.js';
import { EmulatorError } from './errors.js';
import { newMessageId, recordSent } from './inbound.js';
import { type PeerContent, peerContent } from './peer-media.js';

/** A member-to-group text, or file (`media`). */
export interface GroupInboundText extends PeerContent {
  /** The sending member's phone number (a simulated peer). */
  from: string;
  /** The group (`<id>@g.us` or the bare id). */
  group: string;
  /** An account expected among the members (checked; every account in the group receives it). */
  to?: string;
  /** Message id to use (default: a fresh phone-style id). */
  id?: string;
}

/** Encrypts and delivers a member's text to every account in the group. */
export function sendGroupInbound(core: EmulatorCore, request: GroupInboundText): Promise<{ id: string; delivered: boolean; companions: number }> {
  return core.inboundQueue.run(async () => {
    const group = core.groups.get(request.group);
    if (!group) throw new EmulatorError(404, 'unknown_group', `group: no group ${request.group}`, 'group');
    const member = core.world.user(request.from);
    if (!member || !group.has(member)) throw new EmulatorError(400, 'bad_request', `from: ${request.from} is not a member of ${group.jid}`, 'from');
    if (member.companions.size > 0) throw new EmulatorError(400, 'bad_request', `from: ${request.from} is an account; its own client sends to the group`, 'from');
    if (request.to !== undefined) {
      const account = core.world.user(request.to);
      if (!account || !group.has(account) || account.companions.size === 0) {
        throw new EmulatorError(400, 'bad_request', `to: ${request.to} is not an account in ${group.jid}`, 'to');
      }
    }
    const id = request.id ?? newMessageId();
    const content = peerContent(core, member.phone, request);
    const { ciphertext, distribution } = await member.phoneDevice.senderKeys.encrypt(group.jid, member.phone, content.message);
    const keyMessage = proto.Message.encode({
      senderKeyDistributionMessage: { groupId: group.jid, axolotlSenderKeyDistributionMessage: distribution },
    }).finish();
    const given = group.keysGiven.get(member.phone) ?? new Set<string>();
    group.keysGiven.set(member.phone, given);
    let delivered = false;
    let companions = 0;
    for (const { user } of [...group.members.values()]) {
      for (const companion of user.companions.values()) {
        const address = companionAddress(user.phone, companion.device);
        const encs: BinaryNode[] = [];
        if (!given.has(address)) {
          const pairwise = await member.phoneDevice.encrypt(address, keyMessage, () => companion.bundle());
          encs.push({ tag: 'enc', attrs: { v: '2', type: pairwise.type }, content: pairwise.ciphertext });
          given.add(address);
        }
        encs.push({ tag: 'enc', attrs: { v: '2', type: 'skmsg', ...(content.media ? { mediatype: content.media.kind } : {}) }, content: ciphertext });
        const node: BinaryNode = {
          tag: 'message',
          attrs: {
            from: group.jid,
            participant: group.memberJid(member),
            [group.alternateAttr]: group.alternateJid(member),
            addressing_mode: group.addressingMode,
            id,
            t: String(Math.floor(Date.now() / 1000)),
            type: content.media ? 'media' : 'text',
            notify: member.name,
          },
          content: encs,
        };
        delivered = deliver(core, user, companion, node) || delivered;
        companions += 1;
      }
    }
    recordSent(member, id, group.jid, content, delivered);
    core.events.add(member.phone, null, `member ${member.phone} sent ${id} to ${group.jid} (${companions} companion(s)${delivered ? '' : ', none active: queued'})`);
    return { id, delivered, companions };
  });
}
