// Which files each media kind may carry. The type is read from the file's own first bytes
// (file-type); a declared mimetype that the bytes contradict is refused rather than passed on,
// because the recipient's app trusts what the message says it carries.
import { fileTypeFromFile } from 'file-type';
import { HttpError } from '../control/http-error.js';
import type { MediaKind } from './content.js';

/** What each kind accepts, as file-type names them. Documents take any file. */
const ACCEPTED: Record<Exclude<MediaKind, 'document'>, readonly string[]> = {
  image: ['image/jpeg', 'image/png'],
  sticker: ['image/webp'],
  video: ['video/mp4', 'video/3gpp'],
  audio: ['audio/ogg', 'audio/opus', 'audio/mpeg', 'audio/mp4', 'audio/x-m4a', 'audio/aac', 'audio/amr'],
};

/** The type the bytes of a file show, or null when they carry no known signature. */
export async function sniffMimetype(path: string): Promise<string | null> {
  return (await fileTypeFromFile(path))?.mime ?? null;
}

const MIMETYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}(?:\s*;\s*[a-z0-9-]+=[a-z0-9.+-]+)*$/i;

/**
 * The mimetype a message of this kind carries for a file whose bytes show `detected`. Images,
 * video, audio and stickers must be of a type WhatsApp plays (voice notes: Ogg Opus); a document
 * may be any file, named by its declared type unless its bytes show another.
 */
export function checkMimetype(kind: MediaKind, detected: string | null, declared: string | undefined, voice: boolean): string {
  if (declared !== undefined && !MIMETYPE.test(declared)) throw new HttpError(400, 'bad_request', `media.mimetype: ${JSON.stringify(declared)} is not a mimetype (type/subtype)`);
  const base = declared?.split(';')[0]!.trim().toLowerCase();
  if (kind === 'document') {
    detected = detected?.split(';')[0]!.trim() ?? null;
    if (!detected) return declared ?? 'application/octet-stream';
    if (base && base !== detected && base !== 'application/octet-stream' && !sameFamily(base, detected)) {
      throw new HttpError(400, 'bad_request', `media.mimetype: declared ${declared} but the file is ${detected}`);
    }
    return base && base !== 'application/octet-stream' ? declared! : detected;
  }
  const accepted = ACCEPTED[kind];
  const full = detected;
  detected = detected?.split(';')[0]!.trim() ?? null;
  if (!detected || !accepted.includes(detected)) {
    throw new HttpError(400, 'bad_request', `media: ${kind} files must be ${accepted.join(', ')}; this file is ${detected ?? 'of no type its bytes show'} (send it as a document instead)`);
  }
  if (base && base !== detected && !sameFamily(base, detected)) throw new HttpError(400, 'bad_request', `media.mimetype: declared ${declared} but the file is ${detected}`);
  if (voice) {
    if (detected !== 'audio/ogg' && detected !== 'audio/opus') throw new HttpError(400, 'bad_request', `media.voice: a voice note must be Ogg Opus audio; this file is ${detected}`);
    return 'audio/ogg; codecs=opus';
  }
  return detected === 'audio/opus' || full === 'audio/ogg; codecs=opus' ? 'audio/ogg; codecs=opus' : detected;
}

/** Names file-type and people use for the same format. */
const ALIASES: ReadonlyArray<readonly string[]> = [
  ['audio/mp4', 'audio/x-m4a', 'audio/m4a'],
  ['audio/ogg', 'audio/opus'],
  ['image/jpeg', 'image/jpg', 'image/pjpeg'],
  ['audio/mpeg', 'audio/mp3'],
  ['application/zip', 'application/x-zip-compressed'],
];

function sameFamily(a: string, b: string): boolean {
  return ALIASES.some((g) => g.includes(a) && g.includes(b));
}
