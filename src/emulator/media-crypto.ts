/**
 * WhatsApp's media encryption: a 32-byte mediaKey expands with HKDF-SHA256 (info
 * "WhatsApp <Type> Keys") into iv (16), cipherKey (32) and macKey (32); the file on the server
 * is AES-256-CBC(plaintext) followed by the first 10 bytes of HMAC-SHA256(macKey, iv ‖ ciphertext).
 * fileSha256 hashes the plaintext, fileEncSha256 the whole encrypted file.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hkdf } from './kdf.js';

/** The media message kinds the emulator encrypts and decrypts. */
export const MEDIA_KINDS = ['image', 'video', 'audio', 'document', 'sticker'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

/** The HKDF info word of each kind (a sticker is keyed as an image). */
const KEY_INFO: Record<MediaKind, string> = { image: 'Image', video: 'Video', audio: 'Audio', document: 'Document', sticker: 'Image' };

const MAC_LENGTH = 10;

interface MediaKeys {
  iv: Buffer;
  cipherKey: Buffer;
  macKey: Buffer;
}

export function mediaKeys(mediaKey: Uint8Array, kind: MediaKind): MediaKeys {
  const expanded = hkdf(mediaKey, 112, undefined, `WhatsApp ${KEY_INFO[kind]} Keys`);
  return { iv: expanded.subarray(0, 16), cipherKey: expanded.subarray(16, 48), macKey: expanded.subarray(48, 80) };
}

export const sha256 = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest();

/** An encrypted file and the fields a media message carries about it. */
export interface EncryptedMedia {
  mediaKey: Buffer;
  encrypted: Buffer;
  fileSha256: Buffer;
  fileEncSha256: Buffer;
  fileLength: number;
}

/** Encrypts a file under a fresh mediaKey. */
export function encryptMedia(plaintext: Buffer, kind: MediaKind): EncryptedMedia {
  const mediaKey = randomBytes(32);
  const { iv, cipherKey, macKey } = mediaKeys(mediaKey, kind);
  const aes = createCipheriv('aes-256-cbc', cipherKey, iv);
  const ciphertext = Buffer.concat([aes.update(plaintext), aes.final()]);
  const mac = createHmac('sha256', macKey).update(iv).update(ciphertext).digest().subarray(0, MAC_LENGTH);
  const encrypted = Buffer.concat([ciphertext, mac]);
  return { mediaKey, encrypted, fileSha256: sha256(plaintext), fileEncSha256: sha256(encrypted), fileLength: plaintext.length };
}

/** What a media message says about its file. */
export interface MediaClaims {
  mediaKey: Uint8Array;
  fileEncSha256?: Uint8Array | null;
  fileSha256?: Uint8Array | null;
}

/** Checks and decrypts an encrypted file the way a phone does; throws saying which check failed. */
export function decryptMedia(encrypted: Buffer, kind: MediaKind, claims: MediaClaims): Buffer {
  if (!claims.fileEncSha256?.length || !claims.fileSha256?.length) throw new Error('the message lacks fileEncSha256 or fileSha256');
  if (!sha256(encrypted).equals(Buffer.from(claims.fileEncSha256))) throw new Error('fileEncSha256 mismatch');
  if (encrypted.length < MAC_LENGTH + 16) throw new Error('file too short');
  const { iv, cipherKey, macKey } = mediaKeys(claims.mediaKey, kind);
  const ciphertext = encrypted.subarray(0, encrypted.length - MAC_LENGTH);
  const mac = createHmac('sha256', macKey).update(iv).update(ciphertext).digest().subarray(0, MAC_LENGTH);
  if (!timingSafeEqual(mac, encrypted.subarray(encrypted.length - MAC_LENGTH))) throw new Error('media MAC mismatch');
  let plaintext: Buffer;
  try {
    const aes = createDecipheriv('aes-256-cbc', cipherKey, iv);
    plaintext = Buffer.concat([aes.update(ciphertext), aes.final()]);
  } catch (error) {
    throw new Error(`AES-CBC decryption failed: ${(error as Error).message}`);
  }
  if (!sha256(plaintext).equals(Buffer.from(claims.fileSha256))) throw new Error('fileSha256 mismatch');
  return plaintext;
}
