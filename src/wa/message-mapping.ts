// Baileys message shapes to the daemon's own. Kept apart so the mapping is testable on plain
// objects without a socket.
import { proto, type WAMessage } from '@whiskeysockets/baileys';
import type { AckStatus, InboundChatType, InboundMessage } from './types.js';

/** Maps a received message; null for kinds the daemon does not surface (protocol messages, reactions). */
export function toInbound(m: WAMessage): InboundMessage | null {
  const id = m.key.id;
  const chat = m.key.remoteJid;
  if (!id || !chat) return null;
  const msg = m.message;
  if (!msg || msg.protocolMessage || (msg.senderKeyDistributionMessage && Object.keys(msg).length === 1)) return null;
  const text = msg.conversation ?? msg.extendedTextMessage?.text ?? null;
  const chatType = chatTypeOf(chat);
  // In groups, status updates and broadcast lists the chat is not the sender: the participant is.
  const from = chatType === 'direct' || chatType === 'newsletter' ? chat : (m.key.participant ?? chat);
  const ts = typeof m.messageTimestamp === 'number' ? m.messageTimestamp : Number(m.messageTimestamp ?? 0);
  return { id, chat, from, chatType, text, timestamp: ts };
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
