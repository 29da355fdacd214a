/**
 * When an account cannot decrypt a message a simulated peer sent, its client sends a retry
 * receipt; the peer's phone then encrypts the same message again for that device and the server
 * delivers it under the same id, as a real phone does. The plaintext of each inbound message is
 * kept (the most recent ones, bounded) so it can be sent again. A test can also make a message
 * arrive undecryptable on purpose (`undecryptable` in POST /inbound): its first copy is
 * corrupted on the wire (the MAC no longer matches), so the account's Signal session is untouched
 * and the re-sent copy decrypts.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { accountOf, companionAddress } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { SIGNAL_KEY_TYPE } from './curve.js';
import { deliver } from './delivery.js';
import { parseSignedPreKey } from './iq-encrypt.js';
import type { Session } from './session.js';
import type { PreKeyBundle } from './sim-device.js';
import { child, childBytes, readUInt } from './stanza.js';
import type { Companion, User } from './user.js';

/** Inbound messages kept for re-sending. */
const KEEP = 10_000;

/** A stanza as the server delivered it to one companion (the very ciphertext). */
export interface DeliveredCopy {
  companion: Companion;
  node: BinaryNode;
}

interface Resendable {
  peer: User;
  account: User;
  message: Uint8Array;
  mediaKind?: string | undefined;
  /** The copies first delivered (absent for messages that are not re-deliverable). */
  copies?: DeliveredCopy[] | undefined;
  resends: number;
  /** Times the peer started a new session from the keys a retry receipt carried. */
  sessionsRebuilt: number;
}

/** The plaintexts of recent peer-to-account messages, by message id. */
export class InboundResends {
  private readonly byId = new Map<string, Resendable>();

  remember(id: string, entry: Omit<Resendable, 'resends' | 'sessionsRebuilt'>): void {
    const before = this.byId.get(id);
    this.byId.delete(id);
    this.byId.set(id, { ...entry, resends: before?.resends ?? 0, sessionsRebuilt: before?.sessionsRebuilt ?? 0 });
    if (this.byId.size > KEEP) this.byId.delete(this.byId.keys().next().value!);
  }

  get(id: string): Resendable | undefined {
    return this.byId.get(id);
  }

  /** Times the peers started a new session from a retry receipt's keys (all messages, or one id). */
  sessionsRebuilt(id?: string): number {
    if (id !== undefined) return this.byId.get(id)?.sessionsRebuilt ?? 0;
    let n = 0;
    for (const e of this.byId.values()) n += e.sessionsRebuilt;
    return n;
  }

  /** Times the peers re-sent a message after a retry receipt (all messages, or one id). */
  resends(id?: string): number {
    if (id !== undefined) return this.byId.get(id)?.resends ?? 0;
    let n = 0;
    for (const e of this.byId.values()) n += e.resends;
    return n;
  }
}

/** Corrupts a ciphertext so that its MAC check fails (the last byte is part of the MAC). */
export function corruptCiphertext(ciphertext: Uint8Array): Uint8Array {
  const out = Uint8Array.from(ciphertext);
  out[out.length - 1] = out[out.length - 1]! ^ 0xff;
  return out;
}

/**
 * The asking device's keys a retry receipt carries (`<registration>` and `<keys>`: identity, one
 * one-time prekey, the signed prekey), as a bundle; undefined when it carries none or they do not
 * parse. A client adds them from its second retry of a message on, or when it dropped its session.
 */
export function retryReceiptBundle(receipt: BinaryNode): PreKeyBundle | undefined {
  const keys = child(receipt, 'keys');
  if (!keys) return undefined;
  const type = childBytes(keys, 'type');
  if (type?.length !== 1 || type[0] !== SIGNAL_KEY_TYPE) return undefined;
  const registrationId = readUInt(childBytes(receipt, 'registration'));
  const identityKey = childBytes(keys, 'identity');
  const signedPreKey = parseSignedPreKey(child(keys, 'skey'));
  if (registrationId === undefined || !isPublicKey(identityKey) || !signedPreKey || !isPublicKey(signedPreKey.publicKey)) return undefined;
  const key = child(keys, 'key');
  if (!key) return { registrationId, identityKey, signedPreKey };
  const keyId = readUInt(childBytes(key, 'id'));
  const publicKey = childBytes(key, 'value');
  if (keyId === undefined || !isPublicKey(publicKey)) return undefined; // a prekey that does not parse: no bundle, not one without it
  return { registrationId, identityKey, signedPreKey, preKey: { keyId, publicKey } };
}

/** A Curve25519 public key on the wire: 32 bytes, or 33 with the type prefix. */
function isPublicKey(key: Buffer | undefined): key is Buffer {
  return key?.length === 32 || (key?.length === 33 && key[0] === SIGNAL_KEY_TYPE);
}

/**
 * A retry receipt from an account's companion for a message a simulated peer sent it: the peer
 * encrypts it again for that companion and it is delivered with the same id. When the receipt
 * carries the companion's keys, the peer first starts a new session from them, as a phone does
 * (the old one is what failed). False when the id is not a kept peer message to this account.
 */
export async function resendToCompanion(core: EmulatorCore, session: Session, receipt: BinaryNode): Promise<boolean> {
  const id = receipt.attrs.id ?? '';
  const entry = core.inboundResends.get(id);
  const me = accountOf(core, session);
  if (!entry || !me || entry.account !== me.user) return false;
  const { user: account, companion } = me;
  const peerJid = receipt.attrs.to;
  if (peerJid && core.world.resolve(peerJid)?.user !== entry.peer) return false;
  const address = companionAddress(account.phone, companion.device);
  let keys = retryReceiptBundle(receipt);
  if (keys) {
    try {
      await entry.peer.phoneDevice.startSession(address, keys);
      entry.sessionsRebuilt += 1;
    } catch (error) {
      // Keys that do not verify (a bad signature): re-sent on the session the peer has.
      session.event(`message ${id}: the keys in the account's retry receipt did not verify (${(error as Error).message}); re-sending on the existing session`);
      keys = undefined;
    }
  }
  const { type, ciphertext } = await entry.peer.phoneDevice.encrypt(address, entry.message, () => companion.bundle());
  entry.resends += 1;
  const node = {
    tag: 'message',
    attrs: {
      from: entry.peer.jid,
      id,
      t: String(Math.floor(Date.now() / 1000)),
      type: entry.mediaKind ? 'media' : 'text',
      notify: entry.peer.name,
      sender_lid: entry.peer.lidJid,
    },
    content: [{ tag: 'enc', attrs: { v: '2', type, count: String(entry.resends), ...(entry.mediaKind ? { mediatype: entry.mediaKind } : {}) }, content: ciphertext }],
  };
  deliver(core, account, companion, node);
  session.event(`message ${id}: peer ${entry.peer.phone} re-sent it after the account's retry receipt (resend ${entry.resends}${keys ? ', on a new session from the keys the receipt carried' : ''})`);
  return true;
}
