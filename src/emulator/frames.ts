/**
 * WhatsApp's framing on top of WebSocket messages: a one-time intro (`WA 06 03`, optionally
 * preceded by an `ED` edge-routing preamble) and then frames of a 3-byte big-endian length
 * plus body. A frame may span WebSocket messages and one message may hold several frames.
 */

/** The prologue every client sends first: "WA", protocol 6, dictionary version 3. */
export const WA_PROLOGUE = Buffer.from([0x57, 0x41, 0x06, 0x03]);
const ROUTING_MAGIC = Buffer.from('ED', 'latin1');
const MAX_FRAME = 0xffffff;

/** What the intro told us: the prologue (hashed into Noise) and any routing info. */
export interface Intro {
  prologue: Buffer;
  routingInfo: Buffer | null;
}

/** Incremental parser for one connection's inbound byte stream. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  private intro: Intro | null = null;

  /** The parsed intro, once enough bytes have arrived. */
  get parsedIntro(): Intro | null {
    return this.intro;
  }

  /** Adds bytes and returns every complete frame body now available. Throws on a bad intro. */
  push(data: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? data : Buffer.concat([this.buffered, data]);
    if (!this.intro && !this.readIntro()) return [];
    const frames: Buffer[] = [];
    while (this.buffered.length >= 3) {
      const size = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 3 + size) break;
      frames.push(Buffer.from(this.buffered.subarray(3, 3 + size)));
      this.buffered = this.buffered.subarray(3 + size);
    }
    return frames;
  }

  private readIntro(): boolean {
    let offset = 0;
    let routingInfo: Buffer | null = null;
    if (this.buffered.length >= 2 && this.buffered.subarray(0, 2).equals(ROUTING_MAGIC)) {
      if (this.buffered.length < 7) return false;
      const length = this.buffered.readUIntBE(4, 3);
      if (this.buffered.length < 7 + length) return false;
      routingInfo = Buffer.from(this.buffered.subarray(7, 7 + length));
      offset = 7 + length;
    }
    if (this.buffered.length < offset + WA_PROLOGUE.length) return false;
    const prologue = Buffer.from(this.buffered.subarray(offset, offset + WA_PROLOGUE.length));
    if (!prologue.subarray(0, 2).equals(WA_PROLOGUE.subarray(0, 2))) {
      throw new Error(`bad intro: expected "WA", got ${prologue.subarray(0, 2).toString('hex')}`);
    }
    this.intro = { prologue, routingInfo };
    this.buffered = this.buffered.subarray(offset + WA_PROLOGUE.length);
    return true;
  }
}

/** Prefixes a frame body with its 3-byte length. */
export function encodeFrame(body: Uint8Array): Buffer {
  if (body.length > MAX_FRAME) throw new Error(`frame too large: ${body.length} bytes`);
  const frame = Buffer.alloc(3 + body.length);
  frame.writeUIntBE(body.length, 0, 3);
  frame.set(body, 3);
  return frame;
}
