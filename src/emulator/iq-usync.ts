/**
 * `xmlns="usync"` iqs: device lists (phone = device 0, companions with their key-index), the
 * LID of each phone number, and "is on WhatsApp" contact lookups. Every valid phone number is
 * on WhatsApp here: unknown numbers become simulated peers on first mention.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { bytesOf, child, children, iqResult } from './stanza.js';
import type { User } from './user.js';
import { isPhoneNumber } from './world.js';

/** Answers a usync query for every protocol we know (devices, lid, contact). */
export function usyncIq(core: EmulatorCore, iq: BinaryNode): BinaryNode {
  const usync = child(iq, 'usync');
  const protocols = children(child(usync, 'query')).map((p) => p.tag);
  const users = children(child(usync, 'list'), 'user').map((request) => userResult(core, request, protocols));
  return iqResult(iq, [{ tag: 'usync', attrs: { ...(usync?.attrs ?? {}) }, content: [{ tag: 'list', attrs: {}, content: users }] }]);
}

function userResult(core: EmulatorCore, request: BinaryNode, protocols: string[]): BinaryNode {
  const contact = bytesOf(child(request, 'contact'))?.toString('utf8');
  const contactPhone = contact?.replace(/^\+/, '');
  let jid = request.attrs.jid;
  if (!jid && contactPhone && isPhoneNumber(contactPhone)) jid = `${contactPhone}@s.whatsapp.net`;
  const ref = jid ? core.world.resolve(jid) : undefined;
  const content: BinaryNode[] = [];
  for (const protocol of protocols) {
    if (protocol === 'devices') content.push(devicesNode(ref?.user));
    else if (protocol === 'lid' && ref && !jid?.endsWith('@lid')) content.push({ tag: 'lid', attrs: { val: ref.user.lidJid } });
    else if (protocol === 'contact') content.push({ tag: 'contact', attrs: { type: ref ? 'in' : 'out' }, content: contact ?? '' });
  }
  return { tag: 'user', attrs: { jid: jid ?? '' }, content };
}

function devicesNode(user: User | undefined): BinaryNode {
  const devices: BinaryNode[] = (user?.deviceIds() ?? []).map((id) => ({
    tag: 'device',
    attrs: id === 0 ? { id: '0' } : ({ id: String(id), 'key-index': String(id) } as Record<string, string>),
  }));
  return { tag: 'devices', attrs: {}, content: [{ tag: 'device-list', attrs: {}, content: devices }] };
}
