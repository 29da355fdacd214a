// Pairing and persistence, end to end: the daemon (child process, real Baileys) against the
// emulator, driven through the control socket and the real CLI.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli-process.js';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

describe('pairing against the emulator', () => {
  it('pairs by QR, opens after the 515, and keeps the creds across a daemon restart', async () => {
    const world = await newWorld();
    const jid = await world.addAndPair('main', '15550001111');
    expect(jid).toMatch(/^15550001111:\d+@s\.whatsapp\.net$/);
    const before = await world.account('main');
    expect(before).toMatchObject({ state: 'open', jid, origin: 'runtime' });
    expect(before.authSince).not.toBeNull();
    // 515 after pair-success, then a clean login: exactly one reconnect, no backoff.
    expect(world.events.filter((e) => e.type === 'account.close' && e.account === 'main').map((e) => e.code)).toEqual([515]);

    await world.restartDaemon();
    await world.waitState('main', 'open');
    expect((await world.account('main')).jid).toBe(jid);
    expect(world.emulator.accounts().find((a) => a.phone === '15550001111')?.devices).toHaveLength(1);
  });

  it('pair --json prints one JSON line per QR, then paired, and exits 0', async () => {
    const world = await newWorld();
    const w = world;
    await w.client.request('POST', '/v1/accounts', { id: 'cli', wsUrl: w.emulator.url });
    const child = spawn(process.execPath, [BIN, 'pair', 'cli', '--json', '--socket', w.socket], { env: w.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Array<Record<string, string>> = [];
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, string>;
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.type === 'qr' && lines.filter((l) => l.type === 'qr').length === 1) void w.emulator.pair({ phone: '15550002222', qr: line.qr! });
      }
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(lines[0]).toEqual({ type: 'qr', qr: expect.any(String) });
    expect(lines[lines.length - 1]).toEqual({ type: 'paired', jid: expect.stringMatching(/^15550002222:\d+@s\.whatsapp\.net$/) });
    expect(lines.every((l) => ['qr', 'paired'].includes(l.type!))).toBe(true);
    await w.waitState('cli', 'open');
  });

  it('pairs with a pairing code', async () => {
    const world = await newWorld();
    const w = world;
    await w.client.request('POST', '/v1/accounts', { id: 'coded', wsUrl: w.emulator.url });
    let paired = '';
    await w.client.stream(
      '/v1/accounts/coded/pair',
      (raw) => {
        const e = raw as { type: string; code?: string; jid?: string; message?: string };
        if (e.type === 'code') void w.emulator.pair({ phone: '15550003333', code: e.code! });
        if (e.type === 'paired') paired = e.jid!;
        if (e.type === 'error') throw new Error(e.message);
      },
      { method: 'POST', body: { phone: '+1 555 000 3333' } },
    );
    expect(paired).toMatch(/^15550003333:\d+@s\.whatsapp\.net$/);
    await w.waitState('coded', 'open');
  });

  it('logout archives the creds and leaves the account waiting for pairing', async () => {
    const world = await newWorld();
    await world.addAndPair('main', '15550001111');
    const res = await world.client.request<{ state: string }>('POST', '/v1/accounts/main/logout');
    expect(res.body.state).toBe('needs_pairing');
    await world.restartDaemon();
    expect((await world.account('main')).state).toBe('needs_pairing');
  });
});
