/**
 * A simulated phone reads the media in a message it decrypted: it fetches the encrypted file
 * from the emulator's media store (by direct path, else by URL), checks fileEncSha256 and the
 * MAC, decrypts it with the mediaKey and checks fileSha256, and records what it got. A failed
 * check is recorded as `error`; the message itself still counts as received, as on a phone.
 */
import type { proto } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { type MediaKind, decryptMedia, sha256 } from './media-crypto.js';

/** What a phone made of a media message. */
export interface DecryptedMedia {
  kind: MediaKind;
  mimetype: string | null;
  fileName: string | null;
  caption: string | null;
  directPath: string | null;
  /** The length the message declares. */
  fileLength: number | null;
  /** Bytes of plaintext the phone got; null if it got none. */
  size: number | null;
  /** Hex SHA-256 of that plaintext; null if it got none. */
  sha256: string | null;
  /** Why the download or a check failed; null when the file was read and verified. */
  error: string | null;
}

/** The media fields of a message, whatever its kind. */
type MediaFields = proto.Message.IImageMessage & { fileName?: string | null; caption?: string | null };

const FIELDS: Array<[keyof proto.IMessage, MediaKind]> = [
  ['imageMessage', 'image'],
  ['videoMessage', 'video'],
  ['ptvMessage', 'video'],
  ['audioMessage', 'audio'],
  ['documentMessage', 'document'],
  ['stickerMessage', 'sticker'],
];

/** Wrappers whose `.message` holds the content. */
const WRAPPERS = ['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'viewOnceMessageV2Extension', 'documentWithCaptionMessage'] as const;

function unwrap(message: proto.IMessage): proto.IMessage {
  for (let depth = 0; depth < 4; depth++) {
    const wrapper = WRAPPERS.map((w) => message[w]).find((w) => w?.message);
    if (!wrapper?.message) break;
    message = wrapper.message;
  }
  return message;
}

/** `{ media }` for a media message (read and checked), `{}` for anything else. */
export function readMedia(core: EmulatorCore, decoded: proto.IMessage): { media?: DecryptedMedia } {
  const message = unwrap(decoded);
  const found = FIELDS.find(([field]) => message[field] != null);
  if (!found) return {};
  const [field, kind] = found;
  const fields = message[field] as MediaFields;
  const media: DecryptedMedia = {
    kind,
    mimetype: fields.mimetype ?? null,
    fileName: fields.fileName ?? null,
    caption: fields.caption ?? null,
    directPath: fields.directPath ?? null,
    fileLength: fields.fileLength == null ? null : Number(fields.fileLength.toString()),
    size: null,
    sha256: null,
    error: null,
  };
  const where = fields.directPath ?? fields.url;
  const stored = where ? core.media.find(where) : undefined;
  if (!stored) return { media: { ...media, error: where ? `nothing stored at ${where}` : 'the message has no directPath or url' } };
  const mediaKey = fields.mediaKey;
  if (!mediaKey?.length) return { media: { ...media, error: 'the message has no mediaKey' } };
  stored.downloads += 1;
  try {
    const plaintext = decryptMedia(stored.bytes, kind, { mediaKey, fileEncSha256: fields.fileEncSha256, fileSha256: fields.fileSha256 });
    return { media: { ...media, size: plaintext.length, sha256: sha256(plaintext).toString('hex') } };
  } catch (error) {
    return { media: { ...media, error: (error as Error).message } };
  }
}

/** A few words for the event log about a message's media ('' for none). */
export function mediaNote(media: DecryptedMedia | undefined): string {
  if (!media) return '';
  return media.error === null ? `; its ${media.kind} (${media.size} bytes) decrypted and verified` : `; its ${media.kind} failed: ${media.error}`;
}
