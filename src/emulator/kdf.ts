/** HKDF-SHA256 (RFC 5869), written out because node's hkdfSync rejects an empty input key. */
import { createHmac } from 'node:crypto';

const HASH_LEN = 32;

/** HKDF-SHA256 extract-and-expand; an absent salt means 32 zero bytes, as the RFC says. */
export function hkdf(ikm: Uint8Array, length: number, salt?: Uint8Array, info: string | Uint8Array = ''): Buffer {
  const prk = createHmac('sha256', salt && salt.length > 0 ? salt : Buffer.alloc(HASH_LEN)).update(ikm).digest();
  const infoBytes = typeof info === 'string' ? Buffer.from(info, 'utf8') : info;
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; blocks.length * HASH_LEN < length; i++) {
    previous = createHmac('sha256', prk).update(previous).update(infoBytes).update(Buffer.from([i])).digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}
