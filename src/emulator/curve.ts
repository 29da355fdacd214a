/**
 * Curve25519 helpers for the emulator: X25519 key agreement and XEdDSA signatures.
 *
 * Key generation and agreement use node:crypto; signing and strict verification use the
 * libsignal package Baileys itself depends on. Verification here is *strict* (returns the
 * real boolean), unlike Baileys rc14's `Curve.verify`, which accepts any 64-byte signature.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, sign as ed25519Sign } from 'node:crypto';
import { calculateSignature, verifySignature } from 'libsignal/src/curve.js';

/** A Curve25519 key pair with the 32-byte public key (no 0x05 type prefix). */
export interface KeyPair {
  public: Buffer;
  private: Buffer;
}

const PKCS8_X25519_PREFIX = Buffer.from([48, 46, 2, 1, 0, 48, 5, 6, 3, 43, 101, 110, 4, 34, 4, 32]);
const SPKI_X25519_PREFIX = Buffer.from([48, 42, 48, 5, 6, 3, 43, 101, 110, 3, 33, 0]);
export const SIGNAL_KEY_TYPE = 0x05;

/** Generates a fresh random key pair. */
export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519', {
    publicKeyEncoding: { format: 'der', type: 'spki' },
    privateKeyEncoding: { format: 'der', type: 'pkcs8' },
  });
  return {
    public: Buffer.from(publicKey.subarray(SPKI_X25519_PREFIX.length)),
    private: Buffer.from(privateKey.subarray(PKCS8_X25519_PREFIX.length)),
  };
}

/** A key pair that also signs quickly (see generateSigningKeyPair). */
export interface SigningKeyPair extends KeyPair {
  /** An XEdDSA signature over `message`, valid under `public` for any strict verifier. */
  sign(message: Uint8Array): Buffer;
}

const PKCS8_ED25519_SEED_OFFSET = 16;
const SPKI_ED25519_KEY_OFFSET = 12;

/**
 * A fresh key pair whose signatures cost a tenth of a millisecond instead of the pure-JavaScript
 * XEdDSA of `sign` (tens of milliseconds, which made every new simulated peer hold the emulator).
 * The key is born an Ed25519 key (node:crypto): its Curve25519 private key is the Ed25519 secret
 * scalar, so its Curve25519 public key is the Ed25519 public key mapped to Montgomery form, and an
 * Ed25519 signature with the Edwards key's sign bit in the top bit of the last byte (always 0 in
 * a valid S) is exactly what an XEdDSA verifier checks.
 */
export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_SEED_OFFSET);
  const scalar = Buffer.from(createHash('sha512').update(seed).digest().subarray(0, 32));
  scalar[0]! &= 248;
  scalar[31]! &= 127;
  scalar[31]! |= 64;
  const pair = keyPairFromPrivate(scalar);
  const signBit = publicKey.export({ format: 'der', type: 'spki' })[SPKI_ED25519_KEY_OFFSET + 31]! & 0x80;
  return {
    ...pair,
    sign: (message) => {
      const signature = ed25519Sign(null, message, privateKey);
      signature[63]! |= signBit;
      return signature;
    },
  };
}

/** Derives the key pair for a given 32-byte private key (used for the deterministic PKI root). */
export function keyPairFromPrivate(privateKey: Buffer): KeyPair {
  if (privateKey.length !== 32) throw new Error(`private key must be 32 bytes, got ${privateKey.length}`);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return { public: Buffer.from(spki.subarray(SPKI_X25519_PREFIX.length)), private: Buffer.from(privateKey) };
}

/** X25519 agreement between our private key and a peer's public key (32 or 33 bytes). */
export function sharedKey(privateKey: Buffer, publicKey: Uint8Array): Buffer {
  const pub = stripSignalPrefix(publicKey);
  return diffieHellman({
    privateKey: createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' }),
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, pub]), format: 'der', type: 'spki' }),
  });
}

/** XEdDSA signature over `message` with a Curve25519 private key. */
export function sign(privateKey: Buffer, message: Uint8Array): Buffer {
  return Buffer.from(calculateSignature(privateKey, message));
}

/** Strict XEdDSA verification: false for a wrong key, message or signature; never throws. */
export function verifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verifySignature(withSignalPrefix(publicKey), message, signature) === true;
  } catch {
    return false;
  }
}

/** The 33-byte libsignal form of a public key (0x05 type prefix). */
export function withSignalPrefix(publicKey: Uint8Array): Buffer {
  if (publicKey.length === 33 && publicKey[0] === SIGNAL_KEY_TYPE) return Buffer.from(publicKey);
  return Buffer.concat([Buffer.from([SIGNAL_KEY_TYPE]), publicKey]);
}

/** The 32-byte wire form of a public key (drops a 0x05 prefix if present). */
export function stripSignalPrefix(publicKey: Uint8Array): Buffer {
  if (publicKey.length === 33 && publicKey[0] === SIGNAL_KEY_TYPE) return Buffer.from(publicKey.subarray(1));
  return Buffer.from(publicKey);
}
