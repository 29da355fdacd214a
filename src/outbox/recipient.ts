// Recipients as the outbox stores them: one normal form per chat, so that "+1 555 000 1111",
// "15550001111" and "15550001111@s.whatsapp.net" are the same recipient to the policy and the
// allowlist, and nothing slips through by being spelt differently.

/** A normalised recipient. */
export interface Recipient {
  /** `<digits>@s.whatsapp.net`, `<id>@lid` or `<id>@g.us`. */
  jid: string;
  chatType: 'direct' | 'group';
  /** The phone number (digits) when the JID carries one. */
  phone: string | null;
}

const PHONE = /^[1-9]\d{6,14}$/;

/** Normalises a number or JID; returns an error message naming what is wrong instead of throwing. */
export function normaliseRecipient(raw: string): Recipient | { error: string } {
  const v = raw.trim();
  if (v === '') return { error: 'expected a phone number or a WhatsApp JID, got an empty string' };
  const at = v.indexOf('@');
  if (at < 0) {
    const digits = v.replace(/[\s\-().]/g, '').replace(/^\+/, '');
    if (!PHONE.test(digits)) return { error: `expected an international phone number (7-15 digits) or a JID, got ${JSON.stringify(raw)}` };
    return { jid: `${digits}@s.whatsapp.net`, chatType: 'direct', phone: digits };
  }
  // Drop a device suffix (":12") and an agent part ("_1" as Baileys writes it, or ".1").
  const user = v.slice(0, at).split(':')[0]!.split('_')[0]!.split('.')[0]!;
  const server = v.slice(at + 1).toLowerCase();
  switch (server) {
    case 's.whatsapp.net':
    case 'c.us':
      if (!PHONE.test(user)) return { error: `expected digits before @${server}, got ${JSON.stringify(raw)}` };
      return { jid: `${user}@s.whatsapp.net`, chatType: 'direct', phone: user };
    case 'lid':
      if (!/^\d{1,20}$/.test(user)) return { error: `expected digits before @lid, got ${JSON.stringify(raw)}` };
      return { jid: `${user}@lid`, chatType: 'direct', phone: null };
    case 'g.us':
      if (!/^\d[\d-]{3,38}\d$/.test(user)) return { error: `expected a group id before @g.us, got ${JSON.stringify(raw)}` };
      return { jid: `${user}@g.us`, chatType: 'group', phone: null };
    default:
      return { error: `not a WhatsApp recipient: ${JSON.stringify(raw)} (expected a number, or a JID at s.whatsapp.net, lid or g.us)` };
  }
}
