/**
 * The seed of the emulator's shared test root, apart from the PKI (which needs Baileys' protobufs),
 * so what only needs the seed (the media test CA, the vitest setup) loads nothing heavy.
 */
import { createHash } from 'node:crypto';

/** The label hashed into the default root seed; change it and every test root changes. */
const DEFAULT_SEED_LABEL = 'wa-supervisor/emulator/pki-root/v1';

/** The seed of the shared test root that `createEmulator()` uses unless told otherwise. */
export function defaultRootSeed(): Buffer {
  return createHash('sha256').update(DEFAULT_SEED_LABEL).digest();
}
