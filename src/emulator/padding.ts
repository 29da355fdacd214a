/** WhatsApp's random padding of plaintexts before Signal encryption (1:1 and group alike). */
import { randomBytes } from 'node:crypto';

/** Appends WhatsApp's 1–16 bytes of padding (each byte holds the pad length). */
export function padMessage(plaintext: Uint8Array): Buffer {
  const length = (randomBytes(1)[0]! & 0x0f) + 1;
  return Buffer.concat([plaintext, Buffer.alloc(length, length)]);
}

/** Removes that padding; throws if the pad length is impossible. */
export function unpadMessage(padded: Uint8Array): Buffer {
  const length = padded[padded.length - 1];
  if (length === undefined || length === 0 || length > padded.length) throw new Error('bad message padding');
  return Buffer.from(padded.subarray(0, padded.length - length));
}
