// Baileys message shapes to the daemon's own. Kept apart so the mapping is testable on plain
// objects without a socket.
import { proto, type WAMessage } from '@whiskeysockets/baileys';
import type { AckStatus, InboundMessage } from './types.js';

/** Maps a received message; null for kinds the daemon does not surface (protocol messages, reactions). */
export function toInbound(m: WAMessage): InboundMessage | null {
  const id = m.key.id;
  const chat = m.key.remoteJid;
  if (!id || !chat) return null;
  const msg = m.message;
  if (!msg || msg.protocolMessage || (msg.senderKeyDistributionMessage && Object.keys(msg).length === 1)) return null;
  const text = msg.conversation ?? msg.extendedTextMessage?.text ?? null;
  const group = chat.endsWith('@g.us');
  const ts = typeof m.messageTimestamp === 'number' ? m.messageTimestamp : Number(m.messageTimestamp ?? 0);
  return { id, chat, from: group ? (m.key.participant ?? chat) : chat, chatType: group ? 'group' : 'direct', text, timestamp: ts };
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
