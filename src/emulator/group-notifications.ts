/**
 * Changes to a group made "on the server" (by a test, acting as a member): participants added or
 * removed and a new subject. Each change updates the group and pushes
 * `<notification type="w:gp2" from="…@g.us" participant="<actor>">` to the companions of every
 * member, and of those just removed, as Baileys' handleGroupNotification reads it.
 */
import { randomBytes } from 'node:crypto';
import type { BinaryNode } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { deliverToAll } from './delivery.js';
import { EmulatorError } from './errors.js';
import type { Group } from './groups.js';
import { participantNode } from './iq-groups.js';
import type { User } from './user.js';

/** One change; `by` is the member acting (default: the creator). */
export interface GroupChange {
  add?: User[];
  remove?: User[];
  subject?: string;
  by?: User;
}

/** Applies a change and notifies; answers how many notifications went out now (not queued). */
export function changeGroup(core: EmulatorCore, group: Group, change: GroupChange): number {
  const actor = change.by ?? group.creator;
  if (!group.has(actor)) throw new EmulatorError(400, 'bad_request', `by: ${actor.phone} is not a member of ${group.jid}`, 'by');
  const notify: Array<{ child: BinaryNode; also: User[] }> = [];
  const added = (change.add ?? []).filter((u) => !group.has(u));
  if (added.length > 0) {
    for (const user of added) group.members.set(user.phone, { user, role: null });
    notify.push({ child: { tag: 'add', attrs: {}, content: added.map((u) => participantNode(group, u, null)) }, also: [] });
  }
  const removed = (change.remove ?? []).filter((u) => group.has(u));
  if (removed.length > 0) {
    // Built before the members go, so each still has its role.
    const nodes = removed.map((u) => participantNode(group, u, group.members.get(u.phone)?.role ?? null));
    for (const user of removed) group.members.delete(user.phone);
    notify.push({ child: { tag: 'remove', attrs: {}, content: nodes }, also: removed });
  }
  if (change.subject !== undefined) {
    group.subject = change.subject;
    group.subjectOwner = actor;
    group.subjectTime = Math.floor(Date.now() / 1000);
    const attrs = { subject: group.subject, s_o: group.memberJid(actor), s_t: String(group.subjectTime) };
    notify.push({ child: { tag: 'subject', attrs }, also: [] });
  }
  let sent = 0;
  for (const { child, also } of notify) {
    const node: BinaryNode = {
      tag: 'notification',
      attrs: {
        from: group.jid,
        type: 'w:gp2',
        id: randomBytes(8).toString('hex').toUpperCase(),
        t: String(Math.floor(Date.now() / 1000)),
        participant: group.memberJid(actor),
        [group.alternateAttr]: group.alternateJid(actor),
      },
      content: [child],
    };
    for (const user of new Set([...[...group.members.values()].map((m) => m.user), ...also])) {
      if (deliverToAll(core, user, node)) sent += 1;
    }
    core.events.add(null, null, `${group.jid}: ${child.tag} by ${actor.phone}`);
  }
  return sent;
}
