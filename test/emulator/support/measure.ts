/**
 * Measurement script for docs/emulator.md (not part of the suite). Runs real Baileys in this
 * process against the emulator in a child process (or in-process with --in-process) and prints
 * latencies and the fault table as markdown.
 *
 *   npm run build && node --import ./test/emulator/support/ts-loader.mjs test/emulator/support/measure.ts [--in-process] [--slow]
 */
import { fileURLToPath } from 'node:url';
import type { WASocket } from '@whiskeysockets/baileys';
import { createEmulator, startEmulatorChild, trustEmulatorRoot } from '../../../src/emulator/index.js';
import type { FaultSpec } from '../../../src/emulator/index.js';
import { memoryAuthState } from './auth.js';
import { closeAllClients, closed, makeClient, nextQr, opened, pairAccount } from './client.js';

interface Driver {
  url: string;
  pair(qr: string, phone: string): Promise<{ jid: string }>;
  fault(phone: string, fault: FaultSpec): Promise<unknown>;
  decryptedAt(peer: string, id: string): Promise<number>;
  stop(): Promise<unknown>;
}

async function driver(inProcess: boolean): Promise<Driver> {
  if (inProcess) {
    const emu = await createEmulator();
    return {
      url: emu.url,
      pair: (qr, phone) => emu.pair({ qr, phone }),
      fault: async (phone, fault) => emu.injectFault(phone, fault),
      decryptedAt: async (peer, id) => (await emu.waitForDecrypted(peer, (m) => m.id === id)).at,
      stop: () => emu.close(),
    };
  }
  const child = await startEmulatorChild({ entry: fileURLToPath(new URL('../../../dist/emulator/main.js', import.meta.url)), args: ['--log-level', 'silent'] });
  trustEmulatorRoot(Buffer.from(child.rootPublicKey, 'hex'));
  return {
    url: child.url,
    pair: (qr, phone) => child.client.pair({ qr, phone }),
    fault: (phone, fault) => child.client.injectFault(phone, fault),
    decryptedAt: async (peer, id) => {
      await child.client.waitForStanza({ dir: 'out', tag: 'receipt', contains: id, timeoutMs: 10_000 });
      return (await child.client.peerMessages(peer)).find((m) => m.id === id)!.at;
    },
    stop: () => child.stop(),
  };
}

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median} ms (min ${sorted[0]}, max ${sorted.at(-1)}, n=${sorted.length})`;
}

async function main(): Promise<void> {
  const inProcess = process.argv.includes('--in-process');
  const slow = process.argv.includes('--slow');
  const d = await driver(inProcess);
  const out: string[] = [`# emulator ${inProcess ? 'in-process' : 'in a child process'}`];
  let n = 15550100000;
  const phone = (): string => String(n++);

  // pairing round trip: QR emitted -> scanned -> 515 -> new socket open (first login, 812 prekeys)
  const pairing: number[] = [];
  const firstLogin: number[] = [];
  const accounts = [];
  for (let i = 0; i < 5; i++) {
    const p = phone();
    const auth = memoryAuthState();
    const sock = makeClient(d.url, auth);
    const qr = await nextQr(sock);
    const t0 = Date.now();
    const restart = closed(sock);
    await d.pair(qr, p);
    await restart;
    const t1 = Date.now();
    const again = makeClient(d.url, auth);
    await opened(again);
    pairing.push(Date.now() - t0);
    firstLogin.push(Date.now() - t1);
    again.end(undefined);
    accounts.push({ phone: p, auth });
  }
  out.push(`pairing round trip (QR -> paired -> 515 -> open): ${stats(pairing)}`);
  out.push(`first login after pairing (connect -> open, uploads 812 prekeys): ${stats(firstLogin)}`);

  const login: number[] = [];
  for (let i = 0; i < 10; i++) {
    const account = accounts[i % accounts.length]!;
    const sock = makeClient(d.url, account.auth);
    const t0 = Date.now();
    await opened(sock);
    login.push(Date.now() - t0);
    sock.end(undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  out.push(`login (connect -> open, registered creds): ${stats(login)}`);

  const sender = makeClient(d.url, accounts[0]!.auth);
  await opened(sender);
  const first: number[] = [];
  const later: number[] = [];
  for (let i = 0; i < 20; i++) {
    const peer = String(15550200000 + (i % 5));
    const t0 = Date.now();
    const sent = await sender.sendMessage(`${peer}@s.whatsapp.net`, { text: `m${i}` });
    const at = await d.decryptedAt(peer, sent!.key.id!);
    (i < 5 ? first : later).push(at - t0);
  }
  out.push(`send -> peer decrypted, first message to a peer (usync + key fetch): ${stats(first)}`);
  out.push(`send -> peer decrypted, later messages: ${stats(later)}`);
  sender.end(undefined);

  const faults: Array<{ fault: FaultSpec; ka?: number }> = [
    { fault: { kind: 'stream-error', code: 515 } },
    { fault: { kind: 'stream-error', code: 503 } },
    { fault: { kind: 'stream-error', code: 500 } },
    { fault: { kind: 'stream-error', code: 440 } },
    { fault: { kind: 'replace' } },
    { fault: { kind: 'xmlstreamend' } },
    { fault: { kind: 'close' } },
    { fault: { kind: 'terminate' } },
    { fault: { kind: 'failure', code: 401 } },
    { fault: { kind: 'stream-error', code: 401 } },
    { fault: { kind: 'app-silent' }, ka: 1_000 },
  ];
  if (slow) faults.push({ fault: { kind: 'black-hole' }, ka: 1_000 }, { fault: { kind: 'app-silent' }, ka: 30_000 });
  out.push('', '| fault injected | code | DisconnectReason | message | time to report |', '|---|---|---|---|---|');
  for (const { fault, ka } of faults) {
    const account = await pairAccount({ url: d.url, pair: (request) => d.pair(request.qr, request.phone) }, phone());
    const sock: WASocket = makeClient(d.url, account.auth, ka ? { keepAliveIntervalMs: ka } : {});
    await opened(sock);
    const reported = closed(sock, 120_000);
    const t0 = Date.now();
    await d.fault(account.phone, fault);
    const close = await reported;
    out.push(`| ${JSON.stringify(fault)}${ka ? ` (keepAlive ${ka} ms)` : ''} | ${close.code} | ${close.name ?? '-'} | ${close.message} | ${close.at - t0} ms |`);
  }
  closeAllClients();
  await d.stop();
  console.log(out.join('\n'));
  process.exit(0);
}

await main();
