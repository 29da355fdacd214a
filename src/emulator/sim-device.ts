/**
 * A simulated WhatsApp device (a peer's phone, or an account's own phone) with a real
 * libsignal identity: it hands out prekey bundles and encrypts and decrypts 1:1 messages
 * with the same libsignal package Baileys uses, and keeps sender keys for groups.
 */
import { randomInt } from 'node:crypto';
import { ProtocolAddress, SessionBuilder, SessionCipher } from 'libsignal';
import { type KeyPair, generateKeyPair, generateSigningKeyPair, verifyStrict, withSignalPrefix } from './curve.js';
import { padMessage, unpadMessage } from './padding.js';
import { SenderKeys } from './sender-keys.js';
import { MemorySignalStore, type SignalKeyPair } from './signal-store.js';

/** A prekey bundle in wire form (32-byte keys), as `<iq xmlns=encrypt><key>` answers carry it. */
export interface PreKeyBundle {
  registrationId: number;
  identityKey: Buffer;
  signedPreKey: { keyId: number; publicKey: Buffer; signature: Buffer };
  preKey?: { keyId: number; publicKey: Buffer };
}

/** The Signal message types on the wire. */
export type SignalMessageType = 'pkmsg' | 'msg';

function toSignal(pair: KeyPair): SignalKeyPair {
  return { pubKey: withSignalPrefix(pair.public), privKey: pair.private };
}

/** Parses a libsignal address string ("name.device"). */
function parseAddress(address: string): ProtocolAddress {
  const dot = address.lastIndexOf('.');
  return new ProtocolAddress(address.slice(0, dot), Number(address.slice(dot + 1)));
}

/** One simulated device: identity, signed prekey, one-time prekeys and sessions in memory. */
export class SimDevice {
  /** The identity key pair (its public half is the account signature key for a phone); signs fast, as peers come by the hundred. */
  readonly identity = generateSigningKeyPair();
  readonly registrationId: number = randomInt(1, 16380);
  private readonly signedPreKeyId = 1;
  private readonly signedPreKey: KeyPair = generateKeyPair();
  private readonly signedPreKeySignature: Buffer;
  private nextPreKeyId = 1;
  private readonly store: MemorySignalStore;
  /** Sender keys for groups: members' keys it received, and its own. */
  readonly senderKeys = new SenderKeys();

  constructor() {
    this.signedPreKeySignature = this.identity.sign(withSignalPrefix(this.signedPreKey.public));
    this.store = new MemorySignalStore(toSignal(this.identity), this.registrationId, toSignal(this.signedPreKey));
  }

  /** A bundle with a fresh one-time prekey, for a client that wants to start a session with us. */
  bundle(): PreKeyBundle {
    const keyId = this.nextPreKeyId++;
    const preKey = generateKeyPair();
    this.store.preKeys.set(keyId, toSignal(preKey));
    return {
      registrationId: this.registrationId,
      identityKey: this.identity.public,
      signedPreKey: { keyId: this.signedPreKeyId, publicKey: this.signedPreKey.public, signature: this.signedPreKeySignature },
      preKey: { keyId, publicKey: preKey.public },
    };
  }

  /** True if we already have a session with `address`. */
  hasSession(address: string): boolean {
    return this.store.hasSession(parseAddress(address).toString());
  }

  /** Decrypts a message from `address` and strips the padding. */
  async decrypt(address: string, type: SignalMessageType, ciphertext: Uint8Array): Promise<Buffer> {
    const cipher = new SessionCipher(this.store, parseAddress(address));
    const padded =
      type === 'pkmsg' ? await cipher.decryptPreKeyWhisperMessage(ciphertext) : await cipher.decryptWhisperMessage(ciphertext);
    return unpadMessage(padded);
  }

  /**
   * Starts a new session with `address` from `bundle`, the open one kept as an old one (libsignal
   * archives it, so what `address` already sent on it still decrypts here): what a phone does when a retry receipt
   * carries the asking device's keys. The next message to `address` is then a pkmsg. Throws, the
   * open session untouched, when the signed prekey's signature does not verify (libsignal's own
   * start of a session does not check it; a phone does).
   */
  async startSession(address: string, bundle: PreKeyBundle): Promise<void> {
    const { publicKey, signature } = bundle.signedPreKey;
    if (!verifyStrict(bundle.identityKey, withSignalPrefix(publicKey), signature)) throw new Error('the signed prekey is not signed by the identity key');
    await this.#initOutgoing(parseAddress(address), bundle);
  }

  /**
   * Pads and encrypts `plaintext` for `address`; when there is no session yet, `remote` supplies
   * the recipient's bundle to start one (the result is then a pkmsg).
   */
  async encrypt(address: string, plaintext: Uint8Array, remote: () => PreKeyBundle): Promise<{ type: SignalMessageType; ciphertext: Buffer }> {
    const addr = parseAddress(address);
    if (!this.store.hasSession(addr.toString())) await this.#initOutgoing(addr, remote());
    const { type, body } = await new SessionCipher(this.store, addr).encrypt(padMessage(plaintext));
    return { type: type === 3 ? 'pkmsg' : 'msg', ciphertext: Buffer.from(body, 'binary') };
  }

  async #initOutgoing(addr: ProtocolAddress, bundle: PreKeyBundle): Promise<void> {
    await new SessionBuilder(this.store, addr).initOutgoing({
      registrationId: bundle.registrationId,
      identityKey: withSignalPrefix(bundle.identityKey),
      signedPreKey: {
        keyId: bundle.signedPreKey.keyId,
        publicKey: withSignalPrefix(bundle.signedPreKey.publicKey),
        signature: bundle.signedPreKey.signature,
      },
      // libsignal accepts a bundle without a one-time prekey; its typings do not say so.
      preKey: bundle.preKey
        ? { keyId: bundle.preKey.keyId, publicKey: withSignalPrefix(bundle.preKey.publicKey) }
        : (undefined as unknown as { keyId: number; publicKey: Uint8Array }),
    });
  }
}
