/**
 * Making this process's Baileys trust the emulator's PKI root. Test-only: used by the vitest
 * setup file and by tests, never by production code.
 *
 * Baileys checks the server's intermediate certificate against the mutable exported object
 * `WA_CERT_DETAILS`. (In rc14 that check has no effect because `Curve.verify` accepts any
 * 64-byte signature, but the patch keeps tests honest if a later Baileys fixes it.)
 */
import { WA_CERT_DETAILS } from '@whiskeysockets/baileys';

/** Points this process's Baileys at `rootPublicKey`. */
export function trustEmulatorRoot(rootPublicKey: Buffer): void {
  WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootPublicKey);
}

/** The root key this process's Baileys currently trusts. */
export function trustedRoot(): Buffer {
  return Buffer.from(WA_CERT_DETAILS.PUBLIC_KEY);
}
