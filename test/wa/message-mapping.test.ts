// Inbound messages are labelled by the chat they arrived in. A status update, a broadcast-list
// message or a channel post labelled `direct` would look, to a bot, like a person writing to it.
import type { WAMessage } from '@whiskeysockets/baileys';
import { describe, expect, it } from 'vitest';
import { chatTypeOf, toInbound } from '../../src/wa/message-mapping.js';
import type { InboundChatType } from '../../src/wa/types.js';

function msg(remoteJid: string, participant?: string): WAMessage {
  return {
    key: { id: 'ABC123', remoteJid, fromMe: false, ...(participant ? { participant } : {}) },
    message: { conversation: 'hi' },
    messageTimestamp: 1_700_000_000,
  } as WAMessage;
}

describe('toInbound: chatType and sender by the kind of chat', () => {
  it.each([
    { name: 'a person by number', chat: '15550001111@s.whatsapp.net', participant: undefined, chatType: 'direct', from: '15550001111@s.whatsapp.net' },
    { name: 'a person by LID', chat: '123456789012345@lid', participant: undefined, chatType: 'direct', from: '123456789012345@lid' },
    { name: 'a group', chat: '120363025246125888@g.us', participant: '15550002222@s.whatsapp.net', chatType: 'group', from: '15550002222@s.whatsapp.net' },
    { name: 'a status update', chat: 'status@broadcast', participant: '15550002222@s.whatsapp.net', chatType: 'status', from: '15550002222@s.whatsapp.net' },
    { name: 'a broadcast list', chat: '1600000000@broadcast', participant: '15550002222@s.whatsapp.net', chatType: 'broadcast', from: '15550002222@s.whatsapp.net' },
    { name: 'a channel post', chat: '120363000000000000@newsletter', participant: undefined, chatType: 'newsletter', from: '120363000000000000@newsletter' },
  ] satisfies Array<{ name: string; chat: string; participant: string | undefined; chatType: InboundChatType; from: string }>)(
    '$name ($chat) -> $chatType',
    ({ chat, participant, chatType, from }) => {
      expect(toInbound(msg(chat, participant))).toEqual({ id: 'ABC123', chat, from, chatType, text: 'hi', timestamp: 1_700_000_000 });
    },
  );

  it('a status update is never labelled direct, whatever the case of its JID', () => {
    expect(chatTypeOf('STATUS@BROADCAST')).toBe('status');
    expect(chatTypeOf('status@broadcast')).not.toBe('direct');
  });

  it('a status update without a participant falls back to the chat as sender', () => {
    expect(toInbound(msg('status@broadcast'))).toMatchObject({ chatType: 'status', from: 'status@broadcast' });
  });

  it('skips protocol messages and messages without id or chat', () => {
    expect(toInbound({ key: { id: 'X', remoteJid: '15550001111@s.whatsapp.net' }, message: { protocolMessage: {} } } as WAMessage)).toBeNull();
    expect(toInbound({ key: { remoteJid: '15550001111@s.whatsapp.net' }, message: { conversation: 'x' } } as WAMessage)).toBeNull();
  });
});
