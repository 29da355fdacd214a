/** Registrations waiting for a phone: the keys each registering client sent, and code requests. */
import type { BinaryNode } from '@whiskeysockets/baileys';
import type { SignedPreKeyRecord } from './user.js';

/** What a registering client sent in its handshake (`devicePairingData`). */
export interface Registration {
  registrationId: number;
  identityKey: Buffer;
  signedPreKey: SignedPreKeyRecord;
  /** The companion's OS/browser as it described itself. */
  platform: string;
  /** Set once a phone has started pairing it, so a second scan is refused. */
  claimedBy: string | null;
}

/** A pairing-code request (`link_code_companion_reg`, stage companion_hello). */
export interface CodeRequest {
  session: number;
  phone: string;
  ref: string;
  /** salt(32) ‖ iv(16) ‖ AES-CTR(companion ephemeral public key) under the code's key. */
  wrappedCompanionEphemeral: Buffer;
  /** Resolves with the client's companion_finish iq. */
  finish: Promise<BinaryNode>;
  resolveFinish: (node: BinaryNode) => void;
}

/** Pending registrations by connection id and pairing-code requests by phone. */
export class PairingBook {
  readonly registrations = new Map<number, Registration>();
  readonly codeRequests = new Map<string, CodeRequest>();
  private readonly codeWaiters = new Set<(request: CodeRequest) => void>();

  /** Records a pairing-code request and wakes anyone waiting for it. */
  addCodeRequest(request: CodeRequest): void {
    this.codeRequests.set(request.phone, request);
    for (const waiter of this.codeWaiters) waiter(request);
  }

  /**
   * The code request for `phone`, waiting up to `timeoutMs` for it: a client's
   * `requestPairingCode()` resolves before its request reaches us, so a test that types the
   * code at once would otherwise race it.
   */
  waitForCodeRequest(phone: string, timeoutMs: number): Promise<CodeRequest | undefined> {
    const existing = this.codeRequests.get(phone);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const waiter = (request: CodeRequest): void => {
        if (request.phone !== phone) return;
        clearTimeout(timer);
        this.codeWaiters.delete(waiter);
        resolve(request);
      };
      const timer = setTimeout(() => {
        this.codeWaiters.delete(waiter);
        resolve(undefined);
      }, timeoutMs);
      this.codeWaiters.add(waiter);
    });
  }

  /** Forgets everything a closed connection had pending. */
  forget(session: number): void {
    this.registrations.delete(session);
    for (const [phone, request] of this.codeRequests) if (request.session === session) this.codeRequests.delete(phone);
  }
}
