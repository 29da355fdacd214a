/**
 * Signal sender keys of one simulated device, for groups: the keys other members distributed to
 * it (a `SenderKeyDistributionMessage` in a pairwise copy) decrypt their `skmsg` copies, and its
 * own key per group encrypts what it sends there. The cipher is Baileys' own group cipher (the
 * one its sockets use), fed from an in-memory store.
 */
import { ProtocolAddress } from 'libsignal';
import {
  GroupCipher,
  GroupSessionBuilder,
  SenderKeyDistributionMessage,
  SenderKeyName,
  SenderKeyRecord,
} from '@whiskeysockets/baileys/lib/Signal/Group/index.js';
import { padMessage, unpadMessage } from './padding.js';

/** The sender-key state of one device: records by "group::sender" name. */
export class SenderKeys {
  private readonly records = new Map<string, SenderKeyRecord>();
  private readonly store = {
    loadSenderKey: async (name: SenderKeyName): Promise<SenderKeyRecord> => this.records.get(name.toString()) ?? new SenderKeyRecord(),
    storeSenderKey: async (name: SenderKeyName, record: SenderKeyRecord): Promise<void> => {
      this.records.set(name.toString(), record);
    },
  };

  /** True once `sender`'s key for `group` has been received (or, for ourselves, created). */
  has(group: string, sender: string, device: number): boolean {
    const record = this.records.get(nameOf(group, sender, device).toString());
    return record !== undefined && !record.isEmpty();
  }

  /** Stores the key a member distributed (the `axolotlSenderKeyDistributionMessage` bytes). */
  async process(group: string, sender: string, device: number, distribution: Uint8Array): Promise<void> {
    const message = new SenderKeyDistributionMessage(null, null, null, null, distribution);
    await new GroupSessionBuilder(this.store).process(nameOf(group, sender, device), message);
  }

  /** Decrypts a member's `skmsg` and strips the padding; throws without that member's key. */
  async decrypt(group: string, sender: string, device: number, ciphertext: Uint8Array): Promise<Buffer> {
    const name = nameOf(group, sender, device);
    if (!this.has(group, sender, device)) throw new Error(`no sender key of ${name.getSender().toString()} for ${group}`);
    return unpadMessage(await new GroupCipher(this.store, name).decrypt(ciphertext));
  }

  /**
   * Pads and encrypts `plaintext` with our own key for `group` (created on first use); answers the
   * `skmsg` bytes and the distribution message members need to read it.
   */
  async encrypt(group: string, self: string, plaintext: Uint8Array): Promise<{ ciphertext: Buffer; distribution: Buffer }> {
    const name = nameOf(group, self, 0);
    const distribution = await new GroupSessionBuilder(this.store).create(name);
    const ciphertext = await new GroupCipher(this.store, name).encrypt(padMessage(plaintext));
    return { ciphertext: Buffer.from(ciphertext), distribution: Buffer.from(distribution.serialize()) };
  }
}

/** The sender-key name of a member's device in a group (the emulator's own naming). */
function nameOf(group: string, sender: string, device: number): SenderKeyName {
  return new SenderKeyName(group, new ProtocolAddress(sender, device));
}
