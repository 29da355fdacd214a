// Invariants kept by reading the source: exactly one module sends on a WhatsApp connection, and
// exactly one folder (besides the emulator) imports Baileys.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('one gate', () => {
  it('only the send gate calls a connection send', () => {
    const callers = files(SRC)
      .filter((f) => !f.includes('/emulator/') && /\bconn\.send\(|\.send\(\s*row\./.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(callers).toEqual(['outbox/send-gate.ts']);
    // ...and the adapter's send is the only place Baileys' relayMessage (or sendMessage) is called.
    const baileysSenders = files(SRC)
      .filter((f) => !f.includes('/emulator/') && /\.(?:sendMessage|relayMessage)\(/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(baileysSenders).toEqual(['wa/baileys-connection.ts']);
  });

  it('only src/wa (and the emulator) import Baileys', () => {
    const importers = files(SRC)
      .filter((f) => /from ['"]@whiskeysockets\/baileys['"]/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f).split('/')[0]);
    expect([...new Set(importers)].sort()).toEqual(['emulator', 'wa']);
  });
});
