// Baileys message shapes to the daemon's own. Kept apart so the mapping is testable on plain
// objects without a socket.
import { getContentType, jidNormalizedUser, normalizeMessageContent, proto, type WAMessage } from '@whiskeysockets/baileys';
import type { AckStatus, InboundChatType, InboundKind, InboundMediaRef, InboundMediaType, InboundMessage } from './types.js';

/** What a message's content is, as the inbox keeps it. */
export interface ContentSummary {
  kind: InboundKind;
  text: string | null;
  detail?: Record<string, unknown>;
  /** How to download the file of a media message (secret: never in `detail`). */
  media?: InboundMediaRef;
}

const MEDIA: ReadonlyArray<[keyof proto.IMessage, InboundMediaType]> = [
  ['imageMessage', 'image'],
  ['videoMessage', 'video'],
  ['audioMessage', 'audio'],
  ['documentMessage', 'document'],
  ['stickerMessage', 'sticker'],
];

/**
 * Summarises decrypted content; null for what is not a message a person sent (sender-key
 * distribution alone, and protocol messages other than revoke and edit: history-sync
 * notices, app-state keys and the like are the client's own business).
 */
export function describeContent(raw: proto.IMessage | null | undefined): ContentSummary | null {
  if (!raw) return null;
  const protocol = raw.protocolMessage ?? raw.editedMessage?.message?.protocolMessage;
  if (protocol) {
    const target = { targetId: protocol.key?.id ?? null };
    if (protocol.type === proto.Message.ProtocolMessage.Type.REVOKE) return { kind: 'revoke', text: null, detail: target };
    if (protocol.type === proto.Message.ProtocolMessage.Type.MESSAGE_EDIT) {
      return { kind: 'edit', text: describeContent(protocol.editedMessage)?.text ?? null, detail: target };
    }
    return null;
  }
  const m = normalizeMessageContent(raw);
  if (!m) return null;
  if (typeof m.conversation === 'string') return { kind: 'text', text: m.conversation };
  if (m.extendedTextMessage) return { kind: 'text', text: m.extendedTextMessage.text ?? '' };
  for (const [field, kind] of MEDIA) {
    const media = m[field] as MediaFields | null | undefined;
    if (!media) continue;
    const fileSha256 = base64Of(media.fileSha256);
    const ref = mediaRef(kind, media);
    return {
      kind,
      text: media.caption ?? null,
      detail: compact({
        mimetype: media.mimetype,
        fileLength: media.fileLength == null ? undefined : Number(media.fileLength),
        seconds: media.seconds,
        fileName: media.fileName,
        sha256: fileSha256 === null ? undefined : Buffer.from(fileSha256, 'base64').toString('hex'),
      }),
      ...(ref ? { media: ref } : {}),
    };
  }
  if (m.reactionMessage) return { kind: 'reaction', text: m.reactionMessage.text ?? '', detail: { targetId: m.reactionMessage.key?.id ?? null } };
  const poll = m.pollCreationMessage ?? m.pollCreationMessageV2 ?? m.pollCreationMessageV3;
  if (poll) {
    return { kind: 'poll', text: poll.name ?? null, detail: { options: (poll.options ?? []).map((o) => o.optionName ?? ''), selectableCount: poll.selectableOptionsCount ?? 0 } };
  }
  if (m.pollUpdateMessage) return { kind: 'poll_vote', text: null, detail: { targetId: m.pollUpdateMessage.pollCreationMessageKey?.id ?? null } };
  const location = m.locationMessage ?? m.liveLocationMessage;
  if (location) {
    return { kind: 'location', text: null, detail: compact({ latitude: location.degreesLatitude, longitude: location.degreesLongitude, name: (location as proto.Message.ILocationMessage).name }) };
  }
  if (m.contactMessage) return { kind: 'contact', text: null, detail: compact({ displayName: m.contactMessage.displayName }) };
  if (m.contactsArrayMessage) return { kind: 'contact', text: null, detail: compact({ displayName: m.contactsArrayMessage.displayName, count: m.contactsArrayMessage.contacts?.length }) };
  const type = getContentType(m);
  return type ? { kind: 'other', text: null, detail: { type } } : null;
}

/** The fields of a media message the inbox reads (bytes as decoded protobuf gives them, or base64). */
interface MediaFields {
  mimetype?: string | null;
  caption?: string | null;
  fileLength?: unknown;
  seconds?: number | null;
  fileName?: string | null;
  mediaKey?: Uint8Array | string | null;
  directPath?: string | null;
  url?: string | null;
  fileEncSha256?: Uint8Array | string | null;
  fileSha256?: Uint8Array | string | null;
}

/** What a later download of the file needs; null when the message carries no key or location. */
function mediaRef(mediaType: InboundMediaType, media: MediaFields): InboundMediaRef | null {
  const mediaKey = base64Of(media.mediaKey);
  const directPath = media.directPath || null;
  const url = media.url || null;
  if (mediaKey === null || (directPath === null && url === null)) return null;
  return {
    mediaType,
    mediaKey,
    directPath,
    url,
    fileEncSha256: base64Of(media.fileEncSha256),
    fileSha256: base64Of(media.fileSha256),
    fileLength: media.fileLength == null ? null : Number(media.fileLength),
    mimetype: media.mimetype ?? null,
  };
}

/** Bytes of a protobuf field as base64 (a string is taken as base64 already); null when empty. */
function base64Of(v: Uint8Array | string | null | undefined): string | null {
  if (v == null) return null;
  if (typeof v === 'string') return v === '' ? null : v;
  return v.length === 0 ? null : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/** The parts of a received message's key the inbox needs, as Baileys decoded them. */
export interface InboundKey {
  id: string;
  remoteJid: string;
  participant?: string | null | undefined;
}

/**
 * A chat or sender JID as Baileys reports it in messages.upsert: no device part, and a hosted
 * (Cloud API) address as the person's phone number or LID, so both paths store one row.
 */
export function normaliseJid(jid: string): string {
  const n = jidNormalizedUser(jid) || jid;
  const at = n.lastIndexOf('@');
  const server = n.slice(at + 1);
  if (server === 'hosted') return `${n.slice(0, at)}@s.whatsapp.net`;
  if (server === 'hosted.lid') return `${n.slice(0, at)}@lid`;
  return n;
}

/** Builds an InboundMessage from a key, a timestamp and a content summary. */
export function inboundFrom(key: InboundKey, timestamp: number, content: ContentSummary, offline: boolean): InboundMessage {
  const chat = normaliseJid(key.remoteJid);
  const chatType = chatTypeOf(chat);
  // In groups, status updates and broadcast lists the chat is not the sender: the participant is.
  const participant = key.participant ? normaliseJid(key.participant) : null;
  const from = chatType === 'direct' || chatType === 'newsletter' ? chat : (participant ?? chat);
  return {
    id: key.id,
    chat,
    from,
    chatType,
    kind: content.kind,
    text: content.text,
    ...(content.detail ? { detail: content.detail } : {}),
    ...(content.media ? { media: content.media } : {}),
    ...(offline ? { offline: true } : {}),
    timestamp,
  };
}

/** Maps a received message from messages.upsert; null for kinds the daemon does not surface. */
export function toInbound(m: WAMessage, offline = false): InboundMessage | null {
  const id = m.key.id;
  const chat = m.key.remoteJid;
  if (!id || !chat) return null;
  const ts = typeof m.messageTimestamp === 'number' ? m.messageTimestamp : Number(m.messageTimestamp ?? 0);
  if (m.messageStubType === proto.WebMessageInfo.StubType.CIPHERTEXT) {
    return inboundFrom({ id, remoteJid: chat, participant: m.key.participant }, ts, undecryptable(m.messageStubParameters?.[0]), offline);
  }
  const content = describeContent(m.message);
  return content ? inboundFrom({ id, remoteJid: chat, participant: m.key.participant }, ts, content, offline) : null;
}

/** The content summary of a message that could not be decrypted. */
export function undecryptable(error: string | null | undefined): ContentSummary {
  return { kind: 'undecryptable', text: null, detail: { error: error ?? 'decryption failed' } };
}

/**
 * What kind of chat a JID names, by its server. Anything that is not a group, a status, a
 * broadcast list or a channel is a person (`s.whatsapp.net`, `lid`, and servers not known here).
 */
export function chatTypeOf(chat: string): InboundChatType {
  const server = chat.slice(chat.lastIndexOf('@') + 1).toLowerCase();
  if (server === 'g.us') return 'group';
  if (server === 'newsletter') return 'newsletter';
  if (server === 'broadcast') return chat.toLowerCase() === 'status@broadcast' ? 'status' : 'broadcast';
  return 'direct';
}

/** Maps WebMessageInfo.Status to an ack; PENDING says nothing new. */
export function ackStatusOf(status: number | null | undefined): AckStatus | null {
  switch (status) {
    case proto.WebMessageInfo.Status.SERVER_ACK:
      return 'server';
    case proto.WebMessageInfo.Status.DELIVERY_ACK:
      return 'delivered';
    case proto.WebMessageInfo.Status.READ:
      return 'read';
    case proto.WebMessageInfo.Status.PLAYED:
      return 'played';
    case proto.WebMessageInfo.Status.ERROR:
      return 'error';
    default:
      return null;
  }
}

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null));
}
