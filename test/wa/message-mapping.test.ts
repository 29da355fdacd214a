// Inbound messages are labelled by the chat they arrived in. A status update, a broadcast-list
// message or a channel post labelled `direct` would look, to a bot, like a person writing to it.
import { proto, type WAMessage } from '@whiskeysockets/baileys';
import { describe, expect, it } from 'vitest';
import { chatTypeOf, describeContent, toInbound } from '../../src/wa/message-mapping.js';
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
      expect(toInbound(msg(chat, participant))).toEqual({ id: 'ABC123', chat, from, chatType, kind: 'text', text: 'hi', timestamp: 1_700_000_000 });
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

describe('describeContent: what the inbox keeps of each kind', () => {
  const target = { id: 'TARGET1', remoteJid: '15550002222@s.whatsapp.net' };
  it.each<[string, proto.IMessage, ReturnType<typeof describeContent>]>([
    ['conversation', { conversation: 'hi' }, { kind: 'text', text: 'hi' }],
    ['extended text', { extendedTextMessage: { text: 'hello' } }, { kind: 'text', text: 'hello' }],
    ['image with caption', { imageMessage: { mimetype: 'image/jpeg', caption: 'look', fileLength: 1234 } }, { kind: 'image', text: 'look', detail: { mimetype: 'image/jpeg', fileLength: 1234 } }],
    ['voice note', { audioMessage: { mimetype: 'audio/ogg', seconds: 7 } }, { kind: 'audio', text: null, detail: { mimetype: 'audio/ogg', seconds: 7 } }],
    ['document in a caption wrapper', { documentWithCaptionMessage: { message: { documentMessage: { mimetype: 'application/pdf', fileName: 'a.pdf', caption: 'the file' } } } }, { kind: 'document', text: 'the file', detail: { mimetype: 'application/pdf', fileName: 'a.pdf' } }],
    ['view-once video', { viewOnceMessageV2: { message: { videoMessage: { mimetype: 'video/mp4' } } } }, { kind: 'video', text: null, detail: { mimetype: 'video/mp4' } }],
    ['ephemeral text', { ephemeralMessage: { message: { conversation: 'gone soon' } } }, { kind: 'text', text: 'gone soon' }],
    ['reaction', { reactionMessage: { key: target, text: '👍' } }, { kind: 'reaction', text: '👍', detail: { targetId: 'TARGET1' } }],
    ['revoke', { protocolMessage: { type: proto.Message.ProtocolMessage.Type.REVOKE, key: target } }, { kind: 'revoke', text: null, detail: { targetId: 'TARGET1' } }],
    ['edit', { editedMessage: { message: { protocolMessage: { type: proto.Message.ProtocolMessage.Type.MESSAGE_EDIT, key: target, editedMessage: { conversation: 'fixed' } } } } }, { kind: 'edit', text: 'fixed', detail: { targetId: 'TARGET1' } }],
    ['poll', { pollCreationMessageV3: { name: 'lunch?', options: [{ optionName: 'yes' }, { optionName: 'no' }], selectableOptionsCount: 1 } }, { kind: 'poll', text: 'lunch?', detail: { options: ['yes', 'no'], selectableCount: 1 } }],
    ['poll vote', { pollUpdateMessage: { pollCreationMessageKey: target } }, { kind: 'poll_vote', text: null, detail: { targetId: 'TARGET1' } }],
    ['location', { locationMessage: { degreesLatitude: 52.5, degreesLongitude: 13.4 } }, { kind: 'location', text: null, detail: { latitude: 52.5, longitude: 13.4 } }],
    ['contact', { contactMessage: { displayName: 'Ann' } }, { kind: 'contact', text: null, detail: { displayName: 'Ann' } }],
    ['something newer', { buttonsResponseMessage: { selectedButtonId: 'b1' } }, { kind: 'other', text: null, detail: { type: 'buttonsResponseMessage' } }],
    ['sender key only', { senderKeyDistributionMessage: { groupId: 'g' } }, null],
    ['history sync notice', { protocolMessage: { type: proto.Message.ProtocolMessage.Type.HISTORY_SYNC_NOTIFICATION } }, null],
  ])('%s', (_name, content, expected) => {
    expect(describeContent(content)).toEqual(expected);
  });

  it('a message Baileys could not decrypt is kept as undecryptable, with the error', () => {
    const m = { key: { id: 'X', remoteJid: '15550002222@s.whatsapp.net' }, messageTimestamp: 5, messageStubType: proto.WebMessageInfo.StubType.CIPHERTEXT, messageStubParameters: ['Bad MAC'] } as WAMessage;
    expect(toInbound(m)).toMatchObject({ kind: 'undecryptable', text: null, detail: { error: 'Bad MAC' } });
  });

  it('normalises the device part of chat and sender away', () => {
    const m = { key: { id: 'X', remoteJid: '120363025246125888@g.us', participant: '15550002222:3@s.whatsapp.net' }, message: { conversation: 'x' } } as WAMessage;
    expect(toInbound(m)).toMatchObject({ chat: '120363025246125888@g.us', from: '15550002222@s.whatsapp.net' });
  });
});
