/**
 * Vitest setup (registered in vitest.config.ts): makes this worker's Baileys trust the
 * emulator's PKI root, the same module instance the tests import.
 *
 * In-process emulators are created later, at runtime, so we cannot read their root here.
 * Instead every `createEmulator()` derives its root from the same fixed seed by default
 * (src/emulator/pki.ts), and this file trusts that seed's public key. To test against an
 * emulator with another root (e.g. a standalone one), set WA_EMULATOR_ROOT to its hex key.
 *
 * It also makes `https` (Baileys' uploads) and the global `fetch` (its downloads) trust the
 * media test CA derived from the same default seed (src/emulator/media-ca.ts), or the CA in
 * WA_EMULATOR_MEDIA_CA.
 */
import { defaultMediaCaPem } from '../../src/emulator/media-ca.js';
import { MEDIA_CA_ENV, readMediaCa, trustMediaCa } from '../../src/emulator/media-trust.js';
import { defaultRootPublicKey } from '../../src/emulator/pki.js';
import { ROOT_ENV, parseRootKey } from '../../src/emulator/root-key.js';
import { trustEmulatorRoot } from '../../src/emulator/trust-root.js';

const fromEnv = process.env[ROOT_ENV];
trustEmulatorRoot(fromEnv ? parseRootKey(fromEnv) : defaultRootPublicKey());

const mediaCaFromEnv = process.env[MEDIA_CA_ENV];
await trustMediaCa(mediaCaFromEnv ? readMediaCa(mediaCaFromEnv) : defaultMediaCaPem());
