/**
 * The state every handler works on: users, groups, connections, faults, timeline, keys and options.
 * Handlers are plain functions of (core, session, stanza), so they can be read one by one.
 */
import { InboundResends } from './inbound-retry.js';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { type KeyPair, generateKeyPair } from './curve.js';
import { EventLog } from './event-log.js';
import { FaultBook } from './faults.js';
import { MediaCa } from './media-ca.js';
import { MediaStore } from './media-store.js';
import { GroupBook } from './groups.js';
import { PairingBook } from './pairing-book.js';
import { DecryptFailures } from './retry-receipts.js';
import { EmulatorPki } from './pki.js';
import { SerialQueue } from './serial-queue.js';
import { Turns } from '../loop-turns.js';
import { SessionRegistry } from './session-registry.js';
import { Timeline } from './timeline.js';
import type { DecryptedMessage } from './user.js';
import { World } from './world.js';

/** Tunables of one emulator (all optional in `createEmulator`). */
export interface EmulatorSettings {
  /** Close a connection after this long without an application stanza from it; 0 = never. */
  idleMs: number;
  /** How many QR refs a registering client gets (each lives 60 s, then 20 s, in Baileys). */
  qrRefs: number;
  /** Receipt a simulated phone sends for a message it decrypted. */
  autoReceipt: 'delivery' | 'read' | 'none';
  /** How long the offline flush waits for the client to acknowledge before `<ib><offline>`. */
  offlineAckWaitMs: number;
  /**
   * How long every frame the emulator sends takes to reach the client, in ms (0 = at once).
   * Frames keep their order whatever the value; see docs/emulator.md for the default.
   */
  latencyMs: number;
}

/** Emitted on `EmulatorCore.notices` whenever a simulated phone decrypts a message. */
export interface DecryptedNotice {
  /** Whose phone decrypted it. */
  phone: string;
  /** True for a device-sent copy on the sender's own phone, false for a peer's copy. */
  own: boolean;
  message: DecryptedMessage;
}

/** The shared state of one emulator instance. */
export class EmulatorCore {
  readonly world = new World();
  readonly sessions = new SessionRegistry();
  readonly faults = new FaultBook();
  readonly pairing = new PairingBook();
  readonly groups = new GroupBook();
  /** Decryption failures tests arm, and the retry receipts phones have sent. */
  readonly decryptFailures = new DecryptFailures();
  readonly timeline: Timeline;
  readonly events: EventLog;
  readonly pki: EmulatorPki;
  /** Our Noise static key, certified by the leaf of `certChain`. */
  readonly staticKey: KeyPair = generateKeyPair();
  readonly certChain: Buffer;
  /** Emits `decrypted` (DecryptedNotice) so waits can be event-driven. */
  readonly notices = new EventEmitter();
  /** Plaintexts of recent peer-to-account messages, re-sent when an account asks (retry receipt). */
  readonly inboundResends = new InboundResends();
  /** Media files simulated phones uploaded again because an account asked (media-retry.ts). */
  mediaReuploads = 0;
  /** Per companion ("phone:device"), how often a newer login replaced a live session (440). */
  readonly replaced = new Map<string, number>();
  /** Serialises peer-to-account sends, so they reach the client in request order. */
  readonly inboundQueue = new SerialQueue();
  /** One delivery of a client's message per turn of the loop (loop-turns.ts). */
  readonly turns = new Turns();
  /** Per-account idle windows that override `settings.idleMs`. */
  readonly idleOverrides = new Map<string, number>();
  /** Encrypted media files and upload tokens (served by media-server.ts). */
  readonly media = new MediaStore();
  /** The test CA of the HTTPS media server (derived from the root seed). */
  readonly mediaCa: MediaCa;

  constructor(
    readonly settings: EmulatorSettings,
    readonly log: Logger,
    rootSeed?: Buffer,
    timelineLimit?: number,
  ) {
    this.pki = new EmulatorPki(rootSeed);
    this.mediaCa = new MediaCa(rootSeed);
    this.certChain = this.pki.certChainFor(this.staticKey.public);
    this.timeline = new Timeline(timelineLimit);
    this.events = new EventLog((event) => log.info({ phone: event.phone, session: event.session }, event.text));
  }

  /** The idle window that applies to an account's connections. */
  idleWindowFor(phone: string | null): number {
    return (phone !== null ? this.idleOverrides.get(phone) : undefined) ?? this.settings.idleMs;
  }
}
