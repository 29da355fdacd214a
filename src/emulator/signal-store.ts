/** In-memory libsignal storage for one simulated device (trust on first use, like Baileys). */
import type { SessionRecord, SignalStorage } from 'libsignal';

/** A key pair in libsignal's shape: 33-byte prefixed public key, 32-byte private key. */
export interface SignalKeyPair {
  pubKey: Buffer;
  privKey: Buffer;
}

/** The storage callbacks libsignal's SessionBuilder and SessionCipher need, kept in maps. */
export class MemorySignalStore implements SignalStorage {
  private readonly sessions = new Map<string, SessionRecord>();
  /** One-time prekeys this device has handed out and not yet seen used. */
  readonly preKeys = new Map<number, SignalKeyPair>();

  constructor(
    private readonly identity: SignalKeyPair,
    private readonly registrationId: number,
    private readonly signedPreKey: SignalKeyPair,
  ) {}

  /** libsignal: the session with `id`, if any. */
  async loadSession(id: string): Promise<SessionRecord | undefined> {
    return this.sessions.get(id);
  }

  /** libsignal: saves a session. */
  async storeSession(id: string, session: SessionRecord): Promise<void> {
    this.sessions.set(id, session);
  }

  /** True when a session with `id` ("name.device") exists. */
  hasSession(id: string): boolean {
    return this.sessions.has(id);
  }

  /** libsignal: every identity is trusted (TOFU, as Baileys does). */
  isTrustedIdentity(): boolean {
    return true;
  }

  /** libsignal: a one-time prekey we handed out. */
  async loadPreKey(id: number | string): Promise<SignalKeyPair | undefined> {
    return this.preKeys.get(Number(id));
  }

  /** libsignal: a one-time prekey was used up. */
  removePreKey(id: number): void {
    this.preKeys.delete(id);
  }

  /** libsignal: our (only) signed prekey. */
  loadSignedPreKey(): SignalKeyPair {
    return this.signedPreKey;
  }

  /** libsignal: our registration id. */
  getOurRegistrationId(): number {
    return this.registrationId;
  }

  /** libsignal: our identity key pair. */
  getOurIdentity(): SignalKeyPair {
    return this.identity;
  }
}
