/**
 * Vitest setup (registered in vitest.config.ts): makes this worker's Baileys trust the
 * emulator's PKI root, the same module instance the tests import.
 *
 * In-process emulators are created later, at runtime, so we cannot read their root here.
 * Instead every `createEmulator()` derives its root from the same fixed seed by default
 * (src/emulator/pki.ts), and this file trusts that seed's public key. To test against an
 * emulator with another root (e.g. a standalone one), set WA_EMULATOR_ROOT to its hex key.
 */
import { defaultRootPublicKey } from '../../src/emulator/pki.js';
import { ROOT_ENV, parseRootKey } from '../../src/emulator/root-key.js';
import { trustEmulatorRoot } from '../../src/emulator/trust-root.js';

const fromEnv = process.env[ROOT_ENV];
trustEmulatorRoot(fromEnv ? parseRootKey(fromEnv) : defaultRootPublicKey());
