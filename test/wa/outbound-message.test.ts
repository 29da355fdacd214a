// The daemon's outbound content as Baileys content, checked by building real WhatsApp messages
// with Baileys' own generateWAMessage (no socket, no upload: media kinds are covered end to end
// in test/integration/media-send.test.ts).
import { generateWAMessage, proto } from '@whiskeysockets/baileys';
import { describe, expect, it } from 'vitest';
import type { OutboundContent } from '../../src/outbox/content.js';
import { toBaileys } from '../../src/wa/outbound-message.js';

const PEER = '15550008100@s.whatsapp.net';
const GROUP = '120363025246125888@g.us';
const ME = '15550001111:1@s.whatsapp.net';
const noMedia = () => {
  throw new Error('no media here');
};

async function build(jid: string, c: OutboundContent): Promise<{ message: proto.IMessage; edit?: string }> {
  const out = toBaileys(jid, c, noMedia);
  const m = await generateWAMessage(jid, out.content, { userJid: ME, messageId: 'ID1', upload: noMedia as never, ...(out.quoted ? { quoted: out.quoted } : {}) });
  return { message: m.message!, ...(out.edit ? { edit: out.edit } : {}) };
}

describe('toBaileys', () => {
  it('a reply quotes the message it names, with the member who wrote it in a group', async () => {
    const direct = await build(PEER, { type: 'text', text: 'yes', replyTo: { id: 'Q1', fromMe: false, text: 'shall we?' } });
    expect(direct.message.extendedTextMessage).toMatchObject({ text: 'yes', contextInfo: { stanzaId: 'Q1', participant: PEER, quotedMessage: { conversation: 'shall we?' } } });
    const member = '15550007001@s.whatsapp.net';
    const group = await build(GROUP, { type: 'text', text: 'agreed', replyTo: { id: 'Q2', fromMe: false, participant: member, text: null } });
    expect(group.message.extendedTextMessage!.contextInfo).toMatchObject({ stanzaId: 'Q2', participant: member });
    const ours = await build(PEER, { type: 'text', text: 'as I said', replyTo: { id: 'Q3', fromMe: true, text: 'hello' } });
    expect(ours.message.extendedTextMessage!.contextInfo).toMatchObject({ stanzaId: 'Q3', participant: '15550001111@s.whatsapp.net' });
  });

  it('a reaction, an edit and a delete point at their target; edits and deletes carry the stanza attribute', async () => {
    const reaction = await build(PEER, { type: 'reaction', target: { id: 'T1', fromMe: false }, emoji: '👍' });
    expect(reaction.message.reactionMessage).toMatchObject({ text: '👍', key: { id: 'T1', fromMe: false, remoteJid: PEER } });
    expect(reaction.edit).toBeUndefined();
    const edit = await build(PEER, { type: 'edit', target: { id: 'T2', fromMe: true }, text: 'fixed' });
    expect(edit.message.protocolMessage).toMatchObject({ type: proto.Message.ProtocolMessage.Type.MESSAGE_EDIT, key: { id: 'T2', fromMe: true }, editedMessage: { extendedTextMessage: { text: 'fixed' } } });
    expect(edit.edit).toBe('1');
    const del = await build(PEER, { type: 'delete', target: { id: 'T3', fromMe: true } });
    expect(del.message.protocolMessage).toMatchObject({ type: proto.Message.ProtocolMessage.Type.REVOKE, key: { id: 'T3', fromMe: true } });
    expect(del.edit).toBe('7');
  });

  it('a location and a contact card', async () => {
    const loc = await build(PEER, { type: 'location', latitude: 1.5, longitude: -2.25, name: 'Here', address: 'Main St' });
    expect(loc.message.locationMessage).toMatchObject({ degreesLatitude: 1.5, degreesLongitude: -2.25, name: 'Here', address: 'Main St' });
    const card = await build(PEER, { type: 'contact', displayName: 'Desk', vcard: 'BEGIN:VCARD\nEND:VCARD' });
    expect(card.message.contactMessage).toMatchObject({ displayName: 'Desk', vcard: 'BEGIN:VCARD\nEND:VCARD' });
  });

  it('media is streamed from the store, never given to Baileys as a path it could fetch', () => {
    const out = toBaileys(PEER, { type: 'document', media: { sha256: 'a'.repeat(64), bytes: 3, mimetype: 'application/pdf', fileName: 'x.pdf' } }, () => '/dev/null');
    const doc = (out.content as { document: { stream?: unknown; url?: unknown } }).document;
    expect(doc.stream).toBeDefined();
    expect(doc.url).toBeUndefined();
    (doc.stream as { destroy(): void }).destroy();
  });
});
