/** Reading the parts of a decrypted `proto.Message` the emulator reports. */
import type { proto } from '@whiskeysockets/baileys';

/** Text and kind of a message: text from `conversation` or `extendedTextMessage.text`. */
export interface MessageSummary {
  text: string | null;
  /** The first content field present, e.g. `extendedTextMessage` or `reactionMessage`. */
  kind: string;
  /**
   * What a phone shows besides the text: `quotedId` (a reply), `reaction` and `targetId`,
   * `revoked` or `edited` (a protocol message, with the new text) and `targetId`, a location's
   * `latitude`/`longitude`/`name`, a contact's `displayName`/`vcard`, a caption, a file name.
   */
  detail?: Record<string, unknown>;
}

/** Summarises a decoded message (decoded messages only carry the fields that were set). */
export function summarise(message: proto.IMessage): MessageSummary {
  const fields = message as Record<string, unknown>;
  const kind = Object.keys(fields).find((k) => k !== 'messageContextInfo' && fields[k] != null) ?? 'empty';
  const detail = detailOf(message, kind);
  return { text: message.conversation ?? message.extendedTextMessage?.text ?? null, kind, ...(Object.keys(detail).length ? { detail } : {}) };
}

function detailOf(m: proto.IMessage, kind: string): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  const content = (m as Record<string, unknown>)[kind] as { contextInfo?: proto.IContextInfo | null; caption?: string | null; fileName?: string | null } | undefined;
  const quoted = content?.contextInfo?.stanzaId;
  if (quoted) d.quotedId = quoted;
  if (content?.caption) d.caption = content.caption;
  if (content?.fileName) d.fileName = content.fileName;
  if (m.reactionMessage) Object.assign(d, { reaction: m.reactionMessage.text ?? '', targetId: m.reactionMessage.key?.id ?? null });
  const p = m.protocolMessage;
  if (p) {
    // Type numbers of proto.Message.ProtocolMessage.Type: 0 REVOKE, 14 MESSAGE_EDIT.
    if (p.type === 0) Object.assign(d, { revoked: true, targetId: p.key?.id ?? null });
    if (p.type === 14) Object.assign(d, { edited: p.editedMessage?.conversation ?? p.editedMessage?.extendedTextMessage?.text ?? null, targetId: p.key?.id ?? null });
  }
  const loc = m.locationMessage;
  if (loc) Object.assign(d, { latitude: loc.degreesLatitude, longitude: loc.degreesLongitude, ...(loc.name ? { name: loc.name } : {}) });
  const c = m.contactMessage;
  if (c) Object.assign(d, { displayName: c.displayName, vcard: c.vcard });
  return d;
}
