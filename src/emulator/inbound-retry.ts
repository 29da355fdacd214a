/**
 * When an account cannot decrypt a message a simulated peer sent, its client sends a retry
 * receipt; the peer's phone then encrypts the same message again for that device and the server
 * delivers it under the same id, as a real phone does. The plaintext of each inbound message is
 * kept (the most recent ones, bounded) so it can be sent again. A test can also make a message
 * arrive undecryptable on purpose (`undecryptable` in POST /inbound): its first copy is
 * corrupted on the wire (the MAC no longer matches), so the account's Signal session is untouched
 * and the re-sent copy decrypts.
 */
import { accountOf, companionAddress } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { deliver } from './delivery.js';
import type { Session } from './session.js';
import type { User } from './user.js';

/** Inbound messages kept for re-sending. */
const KEEP = 10_000;

interface Resendable {
  peer: User;
  account: User;
  message: Uint8Array;
  mediaKind?: string | undefined;
  resends: number;
}

/** The plaintexts of recent peer-to-account messages, by message id. */
export class InboundResends {
  private readonly byId = new Map<string, Resendable>();

  remember(id: string, entry: Omit<Resendable, 'resends'>): void {
    this.byId.delete(id);
    this.byId.set(id, { ...entry, resends: this.byId.get(id)?.resends ?? 0 });
    if (this.byId.size > KEEP) this.byId.delete(this.byId.keys().next().value!);
  }

  get(id: string): Resendable | undefined {
    return this.byId.get(id);
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
 * A retry receipt from an account's companion for a message a simulated peer sent it: the peer
 * encrypts it again for that companion and it is delivered with the same id. False when the id
 * is not a kept peer message to this account.
 */
export async function resendToCompanion(core: EmulatorCore, session: Session, id: string, peerJid: string | undefined): Promise<boolean> {
  const entry = core.inboundResends.get(id);
  const me = accountOf(core, session);
  if (!entry || !me || entry.account !== me.user) return false;
  const { user: account, companion } = me;
  if (peerJid && core.world.resolve(peerJid)?.user !== entry.peer) return false;
  const { type, ciphertext } = await entry.peer.phoneDevice.encrypt(companionAddress(account.phone, companion.device), entry.message, () => companion.bundle());
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
  session.event(`message ${id}: peer ${entry.peer.phone} re-sent it after the account's retry receipt (resend ${entry.resends})`);
  return true;
}
