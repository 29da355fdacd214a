/**
 * Responder side of WhatsApp's Noise handshake (`Noise_XX_25519_AESGCM_SHA256`) and the
 * transport cipher that follows it. Written from the protocol description on node:crypto,
 * not by reusing Baileys' initiator code, so a successful handshake cross-checks both sides.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import type { proto } from '@whiskeysockets/baileys';
import { type KeyPair, generateKeyPair, sharedKey } from './curve.js';
import { hkdf } from './kdf.js';

/** The protocol name; exactly 32 bytes, so it is the initial hash as-is (not hashed). */
const NOISE_PROTOCOL = Buffer.from('Noise_XX_25519_AESGCM_SHA256\0\0\0\0', 'latin1');
const GCM_TAG_LENGTH = 16;

function ivFor(counter: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(counter, 8);
  return iv;
}

function gcmEncrypt(key: Buffer, counter: number, aad: Buffer, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, ivFor(counter));
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function gcmDecrypt(key: Buffer, counter: number, aad: Buffer, ciphertext: Uint8Array): Buffer {
  const data = Buffer.from(ciphertext);
  const decipher = createDecipheriv('aes-256-gcm', key, ivFor(counter));
  decipher.setAAD(aad);
  decipher.setAuthTag(data.subarray(data.length - GCM_TAG_LENGTH));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - GCM_TAG_LENGTH)), decipher.final()]);
}

/** What the client proved in its ClientFinish: its static Noise key and its ClientPayload bytes. */
export interface ClientFinishResult {
  clientStatic: Buffer;
  payload: Buffer;
}

/** One handshake, responder role. Call `hello()`, then `finish()`, then `split()`. */
export class NoiseResponder {
  private hash: Buffer = NOISE_PROTOCOL;
  private chainingKey: Buffer = NOISE_PROTOCOL;
  private key: Buffer = NOISE_PROTOCOL;
  private counter = 0;
  private readonly ephemeral: KeyPair = generateKeyPair();

  constructor(
    private readonly staticKey: KeyPair,
    private readonly certChain: Buffer,
  ) {}

  /** Mixes the prologue and the client's ephemeral key, and returns the encoded ServerHello. */
  hello(prologue: Buffer, clientEphemeral: Uint8Array): proto.HandshakeMessage.IServerHello {
    this.mixHash(prologue);
    this.mixHash(clientEphemeral);
    this.mixHash(this.ephemeral.public);
    this.mixKey(sharedKey(this.ephemeral.private, clientEphemeral));
    const encryptedStatic = this.encrypt(this.staticKey.public);
    this.mixKey(sharedKey(this.staticKey.private, clientEphemeral));
    const encryptedPayload = this.encrypt(this.certChain);
    return { ephemeral: this.ephemeral.public, static: encryptedStatic, payload: encryptedPayload };
  }

  /** Decrypts the client's static key and payload from its ClientFinish. Throws on a bad tag. */
  finish(clientFinish: proto.HandshakeMessage.IClientFinish): ClientFinishResult {
    if (!clientFinish.static || !clientFinish.payload) throw new Error('ClientFinish without static or payload');
    const clientStatic = this.decrypt(clientFinish.static);
    this.mixKey(sharedKey(this.ephemeral.private, clientStatic));
    const payload = this.decrypt(clientFinish.payload);
    return { clientStatic, payload };
  }

  /** Derives the transport keys; the client writes with the first half, we with the second. */
  split(): TransportCipher {
    const out = hkdf(Buffer.alloc(0), 64, this.chainingKey);
    return new TransportCipher(Buffer.from(out.subarray(32, 64)), Buffer.from(out.subarray(0, 32)));
  }

  private mixHash(data: Uint8Array): void {
    this.hash = createHash('sha256').update(this.hash).update(data).digest();
  }

  private mixKey(inputKeyMaterial: Buffer): void {
    const out = hkdf(inputKeyMaterial, 64, this.chainingKey);
    this.chainingKey = Buffer.from(out.subarray(0, 32));
    this.key = Buffer.from(out.subarray(32, 64));
    this.counter = 0;
  }

  private encrypt(plaintext: Uint8Array): Buffer {
    const ciphertext = gcmEncrypt(this.key, this.counter++, this.hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  private decrypt(ciphertext: Uint8Array): Buffer {
    const plaintext = gcmDecrypt(this.key, this.counter++, this.hash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }
}

/** Post-handshake AES-256-GCM with one counter per direction and empty associated data. */
export class TransportCipher {
  private writeCounter = 0;
  private readCounter = 0;
  private static readonly EMPTY = Buffer.alloc(0);

  constructor(
    private readonly writeKey: Buffer,
    private readonly readKey: Buffer,
  ) {}

  /** Encrypts one outgoing frame body. */
  encrypt(plaintext: Uint8Array): Buffer {
    return gcmEncrypt(this.writeKey, this.writeCounter++, TransportCipher.EMPTY, plaintext);
  }

  /** Decrypts one incoming frame body; throws if the tag does not match. */
  decrypt(ciphertext: Uint8Array): Buffer {
    return gcmDecrypt(this.readKey, this.readCounter++, TransportCipher.EMPTY, ciphertext);
  }
}
