/**
 * A simulated peer's phone sends media: it encrypts the file under a fresh mediaKey, stores it
 * on the emulator's media server (as its upload would) and builds the media message that
 * carries url, directPath, mediaKey and the hashes, so the receiving client can download it.
 */
import { proto } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { EmulatorError } from './errors.js';
import { type MediaKind, encryptMedia } from './media-crypto.js';
import type { UploadType } from './media-store.js';

/** A file a peer sends. */
export interface InboundMedia {
  kind: MediaKind;
  data: Buffer;
  mimetype: string;
  fileName?: string;
  caption?: string;
}

/** What the message and the sender's log need to know about the sent file. */
export interface SentMedia {
  kind: MediaKind;
  directPath: string;
  /** Hex SHA-256 of the plaintext. */
  sha256: string;
  size: number;
}

const UPLOAD_TYPE: Record<MediaKind, UploadType> = { image: 'image', video: 'video', audio: 'audio', document: 'document', sticker: 'image' };

/** Encrypts and stores the file; answers the encoded message and what was stored. */
export function peerMediaMessage(core: EmulatorCore, phone: string, media: InboundMedia): { message: Uint8Array; sent: SentMedia } {
  const encrypted = encryptMedia(media.data, media.kind);
  const stored = core.media.put(UPLOAD_TYPE[media.kind], encrypted.encrypted, phone);
  stored.mediaKey = Buffer.from(encrypted.mediaKey);
  core.events.add(phone, null, `peer ${phone} stored ${media.kind} media: ${media.data.length} bytes, ${stored.directPath}${stored.tampered ? ' (stored corrupted: tampering armed)' : ''}`);
  const fields = {
    url: core.media.urlFor(stored),
    directPath: stored.directPath,
    mediaKey: encrypted.mediaKey,
    fileEncSha256: encrypted.fileEncSha256,
    fileSha256: encrypted.fileSha256,
    fileLength: encrypted.fileLength,
    mimetype: media.mimetype,
    mediaKeyTimestamp: Math.floor(Date.now() / 1000),
    ...(media.caption !== undefined ? { caption: media.caption } : {}),
    ...(media.kind === 'document' ? { fileName: media.fileName ?? 'file', title: media.fileName ?? 'file' } : {}),
  };
  const message = proto.Message.encode(proto.Message.fromObject({ [`${media.kind}Message`]: fields })).finish();
  return { message, sent: { kind: media.kind, directPath: stored.directPath, sha256: encrypted.fileSha256.toString('hex'), size: encrypted.fileLength } };
}

/** What a peer sends: a text, or a file (with an optional caption). */
export interface PeerContent {
  text?: string;
  media?: InboundMedia;
}

/** The encoded message for a peer's text or file; a file is encrypted and stored first. */
export function peerContent(core: EmulatorCore, phone: string, content: PeerContent): { message: Uint8Array; text: string; media?: SentMedia } {
  const { text, media } = content;
  if ((text === undefined) === (media === undefined)) throw new EmulatorError(400, 'bad_request', 'text: give exactly one of "text" or "media"', 'text');
  if (!media) return { message: proto.Message.encode({ conversation: text }).finish(), text: text! };
  if (media.data.length === 0) throw new EmulatorError(400, 'bad_request', 'media.base64: the file is empty', 'media.base64');
  if (media.caption !== undefined && (media.kind === 'audio' || media.kind === 'sticker')) {
    throw new EmulatorError(400, 'bad_request', `media.caption: a ${media.kind} has no caption`, 'media.caption');
  }
  if (media.fileName !== undefined && media.kind !== 'document') throw new EmulatorError(400, 'bad_request', 'media.fileName: only a document has one', 'media.fileName');
  const { message, sent } = peerMediaMessage(core, phone, media);
  return { message, text: media.caption ?? '', media: sent };
}
