/**
 * Retry receipts: what a phone sends when it cannot decrypt a message. The emulator's phones send
 * one when decryption really fails (a Bad MAC after a session race, say) and when a test arms a
 * failure for a message (`POST /peers/<phone>/fail-decrypt`); the sender is then expected to send
 * the same message id again, re-encrypted, as Baileys does.
 */
import type { EmulatorCore } from './core.js';
import { deliverToAll } from './delivery.js';
import type { Group } from './groups.js';
import type { User } from './user.js';

/** Retries a phone asks for one message before it gives up (Baileys re-sends at most 5 times). */
export const MAX_RETRY_REQUESTS = 5;

/** A retry receipt a phone holds back until a test releases it (to have it arrive after a restart). */
interface HeldRetry {
  sender: User;
  id: string;
  lidAddressed: boolean;
  /** For a group message: the group (the receipt then names it, and the phone as participant). */
  group?: Group | undefined;
}

/** Decryption failures armed by tests: per peer phone, message ids (or "the next one"). */
export class DecryptFailures {
  readonly #armed = new Map<string, Array<{ id: string | null; hold: boolean }>>();
  readonly #held = new Map<string, HeldRetry[]>();
  /** Retry receipts sent per (peer, sender, message id). */
  readonly #asked = new Map<string, number>();

  /**
   * The next copy `peer` gets (of message `id`, or of any message) fails to decrypt. With `hold`
   * the retry receipt waits for `release` instead of going out at once.
   */
  arm(peer: string, id: string | null, hold = false): void {
    const list = this.#armed.get(peer) ?? [];
    list.push({ id, hold });
    this.#armed.set(peer, list);
  }

  /** The armed failure for this copy (taken once), or null. */
  take(peer: string, id: string): { hold: boolean } | null {
    const list = this.#armed.get(peer);
    if (!list) return null;
    const i = list.findIndex((armed) => armed.id === id || armed.id === null);
    if (i < 0) return null;
    const [armed] = list.splice(i, 1);
    return { hold: armed!.hold };
  }

  /** Keeps a retry receipt back until `release`. */
  hold(peer: string, retry: HeldRetry): void {
    const list = this.#held.get(peer) ?? [];
    list.push(retry);
    this.#held.set(peer, list);
  }

  /** The retry receipts `peer` held back, now due (and forgotten here). */
  release(peer: string): HeldRetry[] {
    const list = this.#held.get(peer) ?? [];
    this.#held.delete(peer);
    return list;
  }

  /** Counts one more request for a message; null when the phone has asked often enough. */
  nextCount(peer: string, sender: string, id: string): number | null {
    const key = `${peer}|${sender}|${id}`;
    const count = (this.#asked.get(key) ?? 0) + 1;
    if (count > MAX_RETRY_REQUESTS) return null;
    this.#asked.set(key, count);
    return count;
  }

  /** How many retry receipts a peer has sent, over all messages. */
  sentBy(peer: string): number {
    let n = 0;
    for (const [key, count] of this.#asked) if (key.startsWith(`${peer}|`)) n += count;
    return n;
  }
}

/**
 * The peer's phone asks the sender's devices to send message `id` again. For a group message the
 * receipt comes from the group, with the phone as `participant` (as the group addresses it).
 */
export function sendRetryReceipt(core: EmulatorCore, peer: User, sender: User, id: string, lidAddressed: boolean, why: string, group?: Group): void {
  const count = core.decryptFailures.nextCount(peer.phone, sender.phone, id);
  if (count === null) {
    core.events.add(peer.phone, null, `message ${id}: ${why}; asked ${MAX_RETRY_REQUESTS} times already, giving up`);
    return;
  }
  const t = String(Math.floor(Date.now() / 1000));
  const registration = Buffer.alloc(4);
  registration.writeUInt32BE(peer.phoneDevice.registrationId);
  const from: Record<string, string> = group ? { from: group.jid, participant: group.memberJid(peer) } : { from: lidAddressed ? peer.lidJid : peer.jid };
  deliverToAll(core, sender, {
    tag: 'receipt',
    attrs: { ...from, id, t, type: 'retry' },
    content: [
      { tag: 'retry', attrs: { count: String(count), id, t, v: '1' } },
      { tag: 'registration', attrs: {}, content: registration },
    ],
  });
  core.events.add(peer.phone, null, `message ${id}: ${why}; sent a retry receipt (count ${count})`);
}
