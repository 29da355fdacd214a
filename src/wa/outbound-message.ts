// The daemon's outbound content as Baileys message content: what generateWAMessage builds the
// WhatsApp message from, the message a reply quotes, and the stanza attribute an edit or a
// delete carries. Kept apart from the socket so the mapping is testable on plain objects.
import { createReadStream } from 'node:fs';
import type { AnyMessageContent, WAMessage, WAMessageKey } from '@whiskeysockets/baileys';
import type { MessageRef, OutboundContent } from '../outbox/content.js';

/** What one send gives Baileys. */
export interface BaileysOutbound {
  content: AnyMessageContent;
  /** The message a reply quotes (Baileys copies it into the reply's context). */
  quoted?: WAMessage;
  /** The `edit` attribute of the message stanza: 1 for an edit, 7 for a delete of our own message. */
  edit?: '1' | '7';
}

/** Builds Baileys content for a send to `jid`; media is streamed from `mediaPath`. */
export function toBaileys(jid: string, c: OutboundContent, mediaPath: (sha256: string) => string): BaileysOutbound {
  const key = (ref: MessageRef): WAMessageKey => ({ remoteJid: jid, id: ref.id, fromMe: ref.fromMe, ...(ref.participant ? { participant: ref.participant } : {}) });
  const quoted =
    'replyTo' in c && c.replyTo
      ? { quoted: { key: key(c.replyTo), message: { conversation: c.replyTo.text ?? '' }, ...(c.replyTo.participant ? { participant: c.replyTo.participant } : {}) } as WAMessage }
      : {};
  // A stream, never a path string: Baileys would fetch a string that looks like a URL.
  const file = (sha256: string) => ({ stream: createReadStream(mediaPath(sha256)) });
  // Thumbnails, durations and waveforms need optional image and audio libraries; the message
  // goes without them rather than logging a failed attempt on every send.
  const noExtras = { jpegThumbnail: null as unknown as undefined };
  switch (c.type) {
    case 'text':
      return { content: { text: c.text }, ...quoted };
    case 'image':
      return { content: { image: file(c.media.sha256), mimetype: c.media.mimetype, ...(c.caption ? { caption: c.caption } : {}), ...noExtras }, ...quoted };
    case 'video':
      return { content: { video: file(c.media.sha256), mimetype: c.media.mimetype, ...(c.caption ? { caption: c.caption } : {}), ...noExtras }, ...quoted };
    case 'audio':
      return {
        content: { audio: file(c.media.sha256), mimetype: c.media.mimetype, ptt: c.voice === true, seconds: null as unknown as undefined, ...(c.voice ? { waveform: null as unknown as undefined } : {}) },
        ...quoted,
      };
    case 'document':
      return {
        content: { document: file(c.media.sha256), mimetype: c.media.mimetype, fileName: c.media.fileName ?? 'file', ...(c.caption ? { caption: c.caption } : {}) },
        ...quoted,
      };
    case 'sticker':
      return { content: { sticker: file(c.media.sha256), mimetype: c.media.mimetype }, ...quoted };
    case 'location':
      return {
        content: { location: { degreesLatitude: c.latitude, degreesLongitude: c.longitude, ...(c.name ? { name: c.name } : {}), ...(c.address ? { address: c.address } : {}) } },
        ...quoted,
      };
    case 'contact':
      return { content: { contacts: { displayName: c.displayName, contacts: [{ displayName: c.displayName, vcard: c.vcard }] } }, ...quoted };
    case 'reaction':
      return { content: { react: { text: c.emoji, key: key(c.target) } } };
    case 'edit':
      return { content: { text: c.text, edit: key(c.target) }, edit: '1' };
    case 'delete':
      return { content: { delete: key(c.target) }, edit: '7' };
  }
}
