// The emulator's fast signing keys: an Ed25519 key used as a Curve25519 identity. Its signatures
// must verify under the strict XEdDSA verifier Baileys' libsignal uses, its Curve25519 half must
// agree keys like any other, and a wrong key, message or signature must fail.
import { describe, expect, it } from 'vitest';
import { generateKeyPair, generateSigningKeyPair, sharedKey, sign, verifyStrict, withSignalPrefix } from '../../src/emulator/curve.js';

describe('generateSigningKeyPair', () => {
  it('signs what the strict XEdDSA verifier accepts, for either sign bit of the Edwards key', () => {
    const message = withSignalPrefix(generateKeyPair().public);
    const bits = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const pair = generateSigningKeyPair();
      const signature = pair.sign(message);
      bits.add(signature[63]! & 0x80);
      expect(verifyStrict(pair.public, message, signature)).toBe(true);
      // The slow signature of the same private key verifies too: one key, two ways to sign.
      expect(verifyStrict(pair.public, message, sign(pair.private, message))).toBe(true);
    }
    expect([...bits].sort()).toEqual([0, 128]); // both kinds of key were checked
  });

  it('refuses a wrong key, message or signature', () => {
    const pair = generateSigningKeyPair();
    const message = Buffer.from('signed prekey');
    const signature = pair.sign(message);
    expect(verifyStrict(generateSigningKeyPair().public, message, signature)).toBe(false);
    expect(verifyStrict(pair.public, Buffer.from('signed prekez'), signature)).toBe(false);
    const flipped = Buffer.from(signature);
    flipped[10]! ^= 1;
    expect(verifyStrict(pair.public, message, flipped)).toBe(false);
    const otherBit = Buffer.from(signature);
    otherBit[63]! ^= 0x80;
    expect(verifyStrict(pair.public, message, otherBit)).toBe(false);
  });

  it('is a Curve25519 key pair: agreement with another key gives the same secret on both sides', () => {
    const a = generateSigningKeyPair();
    const b = generateKeyPair();
    expect(sharedKey(a.private, b.public)).toEqual(sharedKey(b.private, a.public));
  });
});
