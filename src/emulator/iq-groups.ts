/**
 * `xmlns="w:g2"` iqs: a group's metadata (`<query request="interactive"/>`, what Baileys'
 * groupMetadata sends before a group send) and the groups an account is in (`<participating>`).
 * Only members may read a group (403 otherwise); an unknown group is a 404. Changes (create,
 * subject, participants, settings) are not taken from clients: they answer 501.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { accountOf } from './account-of.js';
import type { EmulatorCore } from './core.js';
import type { Group, MemberRole } from './groups.js';
import type { Session } from './session.js';
import type { User } from './user.js';
import { firstChildTag, iqError, iqResult } from './stanza.js';

/** Answers a w:g2 iq. */
export function groupsIq(core: EmulatorCore, session: Session, iq: BinaryNode): BinaryNode {
  const account = accountOf(core, session);
  if (!account) return iqError(iq, 401, 'not-authorized');
  const op = firstChildTag(iq);
  if (iq.attrs.type === 'get' && op === 'query') {
    const group = core.groups.get(iq.attrs.to ?? '');
    if (!group) return iqError(iq, 404, 'item-not-found');
    if (!group.has(account.user)) return iqError(iq, 403, 'forbidden');
    const reply = iqResult(iq, [groupNode(group)]);
    reply.attrs.from = group.jid;
    return reply;
  }
  if (iq.attrs.type === 'get' && op === 'participating') {
    const groups = core.groups.of(account.user).map(groupNode);
    return iqResult(iq, [{ tag: 'groups', attrs: {}, content: groups }]);
  }
  session.event(`w:g2 ${iq.attrs.type ?? '?'}/${op || '-'} is not emulated; answered 501`);
  return iqError(iq, 501, 'feature-not-implemented');
}

/** `<group …><participant …/>…</group>` as Baileys' extractGroupMetadata reads it. */
export function groupNode(group: Group): BinaryNode {
  const participants = [...group.members.values()].map(({ user, role }) => participantNode(group, user, role));
  return {
    tag: 'group',
    attrs: {
      id: group.id,
      subject: group.subject,
      s_o: group.memberJid(group.subjectOwner),
      s_t: String(group.subjectTime),
      creation: String(group.creation),
      creator: group.memberJid(group.creator),
      size: String(group.members.size),
      addressing_mode: group.addressingMode,
    },
    content: participants,
  };
}

/** `<participant jid type?>` with the member's other identity (`phone_number` or `lid`). */
export function participantNode(group: Group, user: User, role: MemberRole): BinaryNode {
  const attrs: Record<string, string> = { jid: group.memberJid(user) };
  if (group.addressingMode === 'lid') attrs.phone_number = user.jid;
  else attrs.lid = user.lidJid;
  if (role) attrs.type = role;
  return { tag: 'participant', attrs };
}
