// Recipients as the outbox stores them: one normal form per chat, so that "+1 555 000 1111",
// "15550001111" and "15550001111@s.whatsapp.net" are the same recipient to the policy and the
// allowlist, and nothing slips through by being spelt differently. Whatever is not exactly one
// spelling of a person or a group is refused rather than guessed at: a guess that turns two
// strings into one recipient (or one into two) is a way around the allowlist.

/** A normalised recipient. */
export interface Recipient {
  /** `<digits>@s.whatsapp.net`, `<id>@lid` or `<id>@g.us`. */
  jid: string;
  chatType: 'direct' | 'group';
  /** The phone number (digits) when the JID carries one. */
  phone: string | null;
}

/** E.164 without the "+": 7 to 15 digits, never a leading zero (that would be a trunk or 00 prefix). */
const PHONE = /^[1-9]\d{6,14}$/;
/** A LID is a number: 1 to 20 digits without a leading zero, so "007@lid" cannot pose as "7@lid". */
const LID = /^[1-9]\d{0,19}$/;
/**
 * A group id: digits (today's `120363…` ids), or the older `<creator's number>-<unix seconds>`.
 * No leading zeros in either part and exactly one dash in the older form.
 */
const GROUP = /^(?:[1-9]\d{4,39}|[1-9]\d{6,14}-[1-9]\d{8,10})$/;
/** Device (`:12`, uint16 on the wire) and agent (`_1` or `.1`, a small integer) parts of a user JID. */
const DEVICE = /^\d{1,5}$/;
const AGENT = /^\d{1,3}$/;

/** Servers of chats that are not a person or a group: no send may go to them. */
const NOT_SENDABLE: Record<string, string> = {
  broadcast: 'a status update or broadcast list',
  newsletter: 'a channel (newsletter)',
};

/**
 * Normalises a phone number as people write it ("+1 (555) 000-1111", "1.555.000.1111") to its
 * digits; null when it is not 7-15 digits with at most one leading "+". The one phone parser of
 * the daemon: recipients, the allowlist and pairing-code numbers all go through it.
 */
export function normalisePhone(raw: string): string | null {
  const digits = raw.replace(/[\s\-().]/g, '').replace(/^\+/, '');
  return PHONE.test(digits) ? digits : null;
}

/** Normalises a number or JID; returns an error message naming what is wrong instead of throwing. */
export function normaliseRecipient(raw: string): Recipient | { error: string } {
  const r = parseRecipient(raw);
  if (!('error' in r)) return r;
  // Unicode digits, dashes or invisible marks (U+202D from a copied number) look right when printed.
  const odd = [...raw].find((c) => !/[\x20-\x7e]/.test(c) && !/\s/.test(c));
  if (!odd) return r;
  const code = `U+${odd.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return { error: `${r.error}; it contains ${code}, which is no part of a number or JID (digits must be ASCII)` };
}

function parseRecipient(raw: string): Recipient | { error: string } {
  const v = raw.trim();
  if (v === '') return { error: 'expected a phone number or a WhatsApp JID, got an empty string' };
  const at = v.indexOf('@');
  if (at < 0) {
    const digits = normalisePhone(v);
    if (!digits) return { error: `expected an international phone number (7-15 digits) or a JID, got ${JSON.stringify(raw)}` };
    return { jid: `${digits}@s.whatsapp.net`, chatType: 'direct', phone: digits };
  }
  const server = v.slice(at + 1).toLowerCase();
  const local = v.slice(0, at);
  switch (server) {
    case 's.whatsapp.net':
    case 'c.us': {
      const user = userPart(local);
      if (user === null || !PHONE.test(user)) return { error: `expected digits before @${server}, got ${JSON.stringify(raw)}` };
      return { jid: `${user}@s.whatsapp.net`, chatType: 'direct', phone: user };
    }
    case 'lid': {
      const user = userPart(local);
      if (user === null || !LID.test(user)) {
        return { error: `expected digits before @lid (no leading zero, an optional :device), got ${JSON.stringify(raw)}` };
      }
      return { jid: `${user}@lid`, chatType: 'direct', phone: null };
    }
    case 'g.us':
      // A group has no devices or agents: "…_9@g.us" or "…:1@g.us" is not a spelling of a group.
      if (!GROUP.test(local)) return { error: `expected a group id before @g.us, got ${JSON.stringify(raw)}` };
      return { jid: `${local}@g.us`, chatType: 'group', phone: null };
    default: {
      const what = NOT_SENDABLE[server];
      if (what) return { error: `cannot send to ${JSON.stringify(raw)}: it is ${what}, not a person or a group` };
      return { error: `not a WhatsApp recipient: ${JSON.stringify(raw)} (expected a number, or a JID at s.whatsapp.net, lid or g.us)` };
    }
  }
}

/**
 * The user of `user[.agent|_agent][:device]`, with the agent and device parts checked and dropped
 * (they name one of the person's devices, not another person); null when a part is malformed.
 */
function userPart(local: string): string | null {
  const colon = local.indexOf(':');
  const beforeDevice = colon < 0 ? local : local.slice(0, colon);
  if (colon >= 0 && !DEVICE.test(local.slice(colon + 1))) return null;
  const agentAt = beforeDevice.search(/[._]/);
  if (agentAt < 0) return beforeDevice;
  if (!AGENT.test(beforeDevice.slice(agentAt + 1))) return null;
  return beforeDevice.slice(0, agentAt);
}
