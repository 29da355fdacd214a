// Item 8 (three ways to run): the emulator as a child process and as the standalone CLI.
import { spawn } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { DisconnectReason } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type EmulatorChild, startEmulatorChild } from '../../src/emulator/index.js';
import { memoryAuthState } from './support/auth.js';
import { REPO_ROOT, TS_EXEC_ARGV, emulatorSource, runNode } from './support/child-process.js';
import { closeAllClients, closed, makeClient, nextQr, opened } from './support/client.js';

describe('child process', () => {
  let child: EmulatorChild;
  beforeAll(async () => {
    child = await startEmulatorChild({ execArgv: TS_EXEC_ARGV, args: ['--port', '0'] });
  });
  afterEach(() => closeAllClients());
  afterAll(async () => {
    if (child) expect(await child.stop()).toBe(0);
  });

  test('Baileys in this process pairs, opens, sends and gets faulted through the control API', async () => {
    const me = '15559000001';
    const peer = '15559000002';
    const auth = memoryAuthState();
    const pairing = makeClient(child.url, auth);
    const qr = await nextQr(pairing);
    const restart = closed(pairing);
    expect(await child.client.pair({ qr, phone: me })).toMatchObject({ jid: `${me}:1@s.whatsapp.net` });
    expect((await restart).code).toBe(DisconnectReason.restartRequired);

    const sock = makeClient(child.url, auth);
    await opened(sock);
    const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: 'across processes' });
    const entry = await child.client.waitForStanza({ phone: me, dir: 'out', tag: 'receipt', contains: sent!.key.id!, timeoutMs: 5_000 });
    expect(entry.stanza).toContain(`from="${peer}@s.whatsapp.net"`);
    expect(await child.client.peerMessages(peer)).toEqual([expect.objectContaining({ id: sent!.key.id, text: 'across processes', copies: 1 })]);

    const reported = closed(sock);
    await child.client.injectFault(me, { kind: 'xmlstreamend' });
    expect((await reported).code).toBe(DisconnectReason.connectionClosed);
  });
});

describe('standalone CLI (runEmulatorCommand)', () => {
  const cli = [...TS_EXEC_ARGV, emulatorSource('main.ts')];

  test('--help prints usage and exits 0; a bad flag exits 2 with a message on stderr', async () => {
    const help = await runNode([...cli, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: wa-supervisor emulator');
    const bad = await runNode([...cli, '--port', 'eighty']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port: expected an integer');
    expect(bad.stdout).toBe('');
  });

  test('prints exactly one JSON line, serves until SIGTERM, then exits 0', async () => {
    const proc = spawn(process.execPath, [...cli, '--port', '0', '--idle-ms', '60000'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.setEncoding('utf8');
    const firstLine = new Promise<string>((resolve) =>
      proc.stdout.on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
      }),
    );
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    const info = JSON.parse(await firstLine) as Record<string, string>;
    expect(Object.keys(info).sort()).toEqual(['control', 'preload', 'rootPublicKey', 'url']);
    expect(info.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws\/chat$/);
    expect(info.control).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.rootPublicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(isAbsolute(info.preload!)).toBe(true);
    expect(info.preload!.endsWith('dist/emulator/preload.js')).toBe(true);
    const health = (await (await fetch(`${info.control}/health`)).json()) as { ok: boolean; url: string };
    expect(health).toEqual({ ok: true, url: info.url, rootPublicKey: info.rootPublicKey });
    const sock = makeClient(info.url!, memoryAuthState());
    await nextQr(sock);
    sock.end(undefined);
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
  });
});
