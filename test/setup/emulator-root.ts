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
 * WA_EMULATOR_MEDIA_CA: at once, in every file.
 *
 * The root is set only in test files that load Baileys (half of them do not, and loading it
 * takes about half a second): before the file's own hooks and before each test, once Baileys is
 * loaded (its protobuf runtime is in the module cache). A file that first loads Baileys inside a
 * hook or a test has it set from its next test on.
 */
import { createRequire } from 'node:module';
import { beforeAll, beforeEach } from 'vitest';
import { defaultMediaCaPem } from '../../src/emulator/media-ca.js';
import { MEDIA_CA_ENV, readMediaCa, trustMediaCa } from '../../src/emulator/media-trust.js';

const mediaCaFromEnv = process.env[MEDIA_CA_ENV];
await trustMediaCa(mediaCaFromEnv ? readMediaCa(mediaCaFromEnv) : defaultMediaCaPem());

const moduleCache = createRequire(import.meta.url).cache;
let trusted = false;

async function trustRootOnceBaileysLoaded(): Promise<void> {
  if (trusted || !Object.keys(moduleCache).some((path) => path.includes('/node_modules/protobufjs/'))) return;
  trusted = true;
  const [{ defaultRootPublicKey }, { ROOT_ENV, parseRootKey }, { trustEmulatorRoot }] = await Promise.all([
    import('../../src/emulator/pki.js'),
    import('../../src/emulator/root-key.js'),
    import('../../src/emulator/trust-root.js'),
  ]);
  const fromEnv = process.env[ROOT_ENV];
  trustEmulatorRoot(fromEnv ? parseRootKey(fromEnv) : defaultRootPublicKey());
}

beforeAll(trustRootOnceBaileysLoaded);
beforeEach(trustRootOnceBaileysLoaded);
