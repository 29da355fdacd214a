/** The emulator root key as it travels in the environment (no Baileys import, so the preload stays light). */

/** The environment variable the preload reads: the root public key as 64 hex characters. */
export const ROOT_ENV = 'WA_EMULATOR_ROOT';

/** Parses a root key from hex, or throws saying what is wrong. */
export function parseRootKey(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${ROOT_ENV} must be 64 hex characters (a 32-byte key), got "${hex}"`);
  return Buffer.from(hex, 'hex');
}
