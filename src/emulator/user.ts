/**
 * The emulator's model of WhatsApp users: each has a phone number, a LID, a simulated primary
 * phone (device 0) and zero or more paired companions (real clients such as Baileys).
 * A "peer" is a user without companions; an "account" is a user with at least one.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import type { DecryptedMedia } from './media-read.js';
import type { SentMedia } from './peer-media.js';
import { type PreKeyBundle, SimDevice } from './sim-device.js';

/** A signed prekey as a companion registered or rotated it. */
export interface SignedPreKeyRecord {
  keyId: number;
  publicKey: Buffer;
  signature: Buffer;
}

/** A message a simulated phone decrypted, deduplicated by id. */
export interface DecryptedMessage {
  id: string;
  /** Sender's phone number. */
  from: string;
  /** Sender's device number. */
  fromDevice: number;
  /** Text (`conversation` or `extendedTextMessage.text`), null for other content. */
  text: string | null;
  /** The first message field present (e.g. `extendedTextMessage`), for non-text content. */
  kind: string;
  /** For a media message: the file as the phone downloaded, checked and decrypted it. */
  media?: DecryptedMedia;
  /** What else the phone read: a quoted message, a reaction, an edit or delete, a location, a contact (message-content.ts). */
  detail?: Record<string, unknown>;
  /** For a message our own companion sent elsewhere (device-sent): where it went. */
  destination?: string;
  /** For a group message: the group (`<id>@g.us`), which is then the chat; absent for 1:1. */
  group?: string;
  /** Epoch ms of the first copy. */
  at: number;
  /** How many copies of this id arrived on the wire (> 1 = wire duplicates). */
  copies: number;
}

/** A message the emulator sent as this user (POST /inbound), with what came back. */
export interface SentMessage {
  id: string;
  /** The account's phone number, or the group JID for a message to a group. */
  to: string;
  /** The text, or a file's caption ('' without one). */
  text: string;
  /** For a file: what was stored and its plaintext hash. */
  media?: SentMedia;
  at: number;
  /** Delivery state seen from the recipient's receipts. */
  status: 'queued' | 'sent' | 'delivered' | 'read';
}

/** A paired client device (what a QR scan or pairing code created). */
export class Companion {
  /** Unacknowledged stanzas for this device: the offline queue, delivered again at next login. */
  readonly mailbox = new Map<string, BinaryNode>();
  /** One-time prekeys the companion uploaded, by id. */
  readonly preKeys = new Map<number, Buffer>();
  /** Epoch ms of pairing. */
  readonly pairedAt = Date.now();
  private readonly ackListeners = new Set<() => void>();

  constructor(
    readonly device: number,
    readonly noiseKey: Buffer,
    readonly identityKey: Buffer,
    readonly registrationId: number,
    public signedPreKey: SignedPreKeyRecord,
    readonly platform: string,
  ) {}

  /** Removes an acknowledged stanza from the mailbox; true if it was there. */
  acknowledge(key: string): boolean {
    const removed = this.mailbox.delete(key);
    if (removed) for (const listener of this.ackListeners) listener();
    return removed;
  }

  /** Resolves once none of `keys` is in the mailbox any more, or after `timeoutMs`. */
  waitForAcks(keys: string[], timeoutMs: number): Promise<void> {
    const done = (): boolean => keys.every((k) => !this.mailbox.has(k));
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.ackListeners.delete(check);
        resolve();
      };
      const check = (): void => {
        if (done()) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.ackListeners.add(check);
    });
  }

  /** A bundle for this companion, consuming one uploaded prekey if there is any left. */
  bundle(): PreKeyBundle {
    const first = this.preKeys.entries().next();
    const bundle: PreKeyBundle = {
      registrationId: this.registrationId,
      identityKey: this.identityKey,
      signedPreKey: this.signedPreKey,
    };
    if (!first.done) {
      const [keyId, publicKey] = first.value;
      this.preKeys.delete(keyId);
      bundle.preKey = { keyId, publicKey };
    }
    return bundle;
  }
}

/** One WhatsApp user: phone number, LID, simulated phone, companions and message logs. */
export class User {
  /** The simulated primary phone (device 0). */
  readonly phoneDevice = new SimDevice();
  readonly companions = new Map<number, Companion>();
  /** Messages this user's phone decrypted from other users (what a peer "received"). */
  readonly received = new Map<string, DecryptedMessage>();
  /** Device-sent copies this user's phone decrypted from its own companions. */
  readonly ownSent = new Map<string, DecryptedMessage>();
  /** Messages the emulator sent as this user. */
  readonly sent = new Map<string, SentMessage>();
  private nextDevice = 1;

  constructor(
    readonly phone: string,
    readonly lid: string,
    public name: string,
  ) {}

  /** `<phone>@s.whatsapp.net`. */
  get jid(): string {
    return `${this.phone}@s.whatsapp.net`;
  }

  /** `<lid>@lid`. */
  get lidJid(): string {
    return `${this.lid}@lid`;
  }

  /** Reserves the next companion device number (never reused, like the real server). */
  allocateDevice(): number {
    return this.nextDevice++;
  }

  /** Devices a usync query lists: the phone and every companion. */
  deviceIds(): number[] {
    return [0, ...this.companions.keys()];
  }

  /** Records a decrypted copy in `log`, counting wire duplicates of the same id. */
  static recordCopy(log: Map<string, DecryptedMessage>, message: Omit<DecryptedMessage, 'copies' | 'at'>): DecryptedMessage {
    const existing = log.get(message.id);
    if (existing) {
      existing.copies += 1;
      return existing;
    }
    const entry: DecryptedMessage = { ...message, at: Date.now(), copies: 1 };
    log.set(message.id, entry);
    return entry;
  }
}
