// Small files whose first bytes carry the signature of their format (what the daemon's type
// check reads), followed by random bytes so that every file has its own sha256.
import { createHash, randomBytes } from 'node:crypto';

const SIGNATURES = {
  png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]),
  jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0]),
  pdf: Buffer.from('%PDF-1.4\n'),
  mp4: Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom'), Buffer.from([0, 0, 2, 0]), Buffer.from('isomiso2')]),
  webp: Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x24, 0, 0, 0]), Buffer.from('WEBPVP8 ')]),
  ogg: (() => {
    const b = Buffer.alloc(64);
    b.write('OggS', 0);
    b[5] = 2;
    b[26] = 1;
    b[27] = 19;
    b.write('OpusHead', 28);
    return b;
  })(),
} as const;

export type MediaFormat = keyof typeof SIGNATURES;

/** A file of the format, `bytes` long in all. */
export function mediaFile(format: MediaFormat, bytes = 4096): Buffer {
  if (format === 'png') return png(bytes);
  const sig = SIGNATURES[format];
  return Buffer.concat([sig, randomBytes(Math.max(0, bytes - sig.length))]);
}

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A PNG whose chunks parse: the signature, an IHDR chunk, then one IDAT chunk of random bytes. */
function png(bytes: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.from([0, 0, 0, 16, 0, 0, 0, 16, 8, 2, 0, 0, 0]);
  const head = Buffer.concat([SIGNATURES.png.subarray(0, 8), chunk('IHDR', ihdr)]);
  return Buffer.concat([head, chunk('IDAT', randomBytes(Math.max(1, bytes - head.length - 12)))]);
}
