// Item 2 (trust root): the --import preload (WA_EMULATOR_ROOT) and the vitest setup file.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Emulator, createEmulator, defaultRootPublicKey } from '../../src/emulator/index.js';
import { REPO_ROOT, TS_EXEC_ARGV, emulatorSource, runNode } from './support/child-process.js';

const PRINT_ROOT = "const b = await import('@whiskeysockets/baileys'); console.log(Buffer.from(b.WA_CERT_DETAILS.PUBLIC_KEY).toString('hex'))";
const preloadArgs = [...TS_EXEC_ARGV, '--import', emulatorSource('preload.ts'), '--input-type=module', '-e', PRINT_ROOT];

let emulator: Emulator;
beforeAll(async () => {
  // a root nobody else uses, so the child can only trust it through the preload
  emulator = await createEmulator({ rootSeed: randomBytes(32) });
});
afterAll(async () => {
  await emulator.close();
});

test('the vitest setup file patched the Baileys instance tests import to the default emulator root', () => {
  expect(Buffer.from(WA_CERT_DETAILS.PUBLIC_KEY)).toEqual(defaultRootPublicKey());
  expect(defaultRootPublicKey()).not.toEqual(Buffer.from('142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b', 'hex'));
});

test('the preload sets WA_CERT_DETAILS.PUBLIC_KEY from WA_EMULATOR_ROOT', async () => {
  const root = randomBytes(32).toString('hex');
  const result = await runNode(preloadArgs, { ...process.env, WA_EMULATOR_ROOT: root });
  expect(result.stderr).toBe('');
  expect(result.stdout.trim()).toBe(root);
});

test('the preload refuses a malformed root and warns when none is set', async () => {
  const bad = await runNode(preloadArgs, { ...process.env, WA_EMULATOR_ROOT: 'not-hex' });
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain('WA_EMULATOR_ROOT must be 64 hex characters');
  const env = { ...process.env };
  delete env.WA_EMULATOR_ROOT;
  const unset = await runNode(preloadArgs, env);
  expect(unset.code).toBe(0);
  expect(unset.stderr).toContain('WA_EMULATOR_ROOT is not set');
  expect(unset.stdout.trim()).toBe('142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b');
});

test('a bot in its own process, started with the preload, trusts the emulator root, pairs and opens', async () => {
  const bot = spawn(
    process.execPath,
    [...TS_EXEC_ARGV, '--import', emulatorSource('preload.ts'), fileURLToPath(new URL('./support/child-bot.mjs', import.meta.url))],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, EMULATOR_URL: emulator.url, WA_EMULATOR_ROOT: emulator.rootPublicKey.toString('hex') },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  bot.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => bot.once('exit', resolve));
  let paired = false;
  let opened: { root: string; me: string } | undefined;
  for await (const line of createInterface({ input: bot.stdout })) {
    const message = JSON.parse(line) as { qr?: string; open?: boolean; root?: string; me?: string; closed?: number };
    if (message.qr && !paired) {
      paired = true;
      await emulator.pair({ qr: message.qr, phone: '15557000001' });
    }
    if (message.open) opened = { root: message.root!, me: message.me! };
    if (message.closed !== undefined) throw new Error(`bot closed with ${message.closed}; stderr: ${stderr}`);
  }
  expect(await exited).toBe(0);
  expect(opened).toEqual({ root: emulator.rootPublicKey.toString('hex'), me: '15557000001:1@s.whatsapp.net' });
});
