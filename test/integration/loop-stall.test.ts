// The daemon's own stalls, told apart from the server's: the daemon process is paused (SIGSTOP)
// until the emulator's idle rule closes its silent connection; once it runs again, the close is
// recorded with how long the server had heard nothing and how late the daemon's loop ran, status
// shows the loop delay, and the operator gets event_loop_stalled (then its recovery is possible).
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountSummary, StatusResponse } from '../../src/control/wire.js';
import { runCli } from '../helpers/cli-process.js';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';

describe('a stall of the daemon itself', () => {
  it('is recorded with the close it caused (loop delay, time since the last frame), shown in status and alerted', async () => {
    const w = await newWorld({ config: (url) => ({ keepalive: { intervalMs: 300, probeDeadlineMs: 200, idleWindowMs: 1200 }, eventLoop: { alertMs: 800 }, accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    w.emulator.setIdleWindow(1200, MAIN);
    await w.waitState('main', 'open');
    const from = w.events.length;
    const idleClose = w.emulator.events.waitFor((e) => e.phone === MAIN && /idle/.test(e.text), 15_000);
    process.kill(w.daemon.pid, 'SIGSTOP');
    try {
      await idleClose; // the server gave up on the silent connection while the daemon was paused
    } finally {
      process.kill(w.daemon.pid, 'SIGCONT');
    }
    const close = await w.waitEvent((e) => e.type === 'account.close' && e.account === 'main', { from });
    expect(close.loopDelayMaxMs as number, JSON.stringify(w.events.slice(from))).toBeGreaterThanOrEqual(1000);
    expect(close.sinceLastFrameMs).toEqual(expect.any(Number));
    const alert = await w.waitEvent((e) => e.type === 'alert' && (e.alert as { code: string }).code === 'event_loop_stalled', { from });
    expect((alert.alert as { text: string }).text).toMatch(/event loop stalled for \d+/);
    const status = (await w.client.request<StatusResponse>('GET', '/v1/status')).body;
    expect(status.daemon.eventLoop!.lastMinute.maxMs).toBeGreaterThanOrEqual(1000);
    expect(status.daemon.eventLoop!.sinceStart.maxMs).toBeGreaterThanOrEqual(1000);
    // The cap on connection attempts follows the loop (adaptive-cap.ts), under its ceiling.
    expect(status.daemon.connectAttempts).toMatchObject({ ceiling: 8 });
    expect(status.daemon.connectAttempts!.cap).toBeLessThanOrEqual(8);
    const account = (await w.client.request<AccountSummary>('GET', '/v1/accounts/main')).body;
    expect(account.lastClose).toMatchObject({ loopDelayMaxMs: close.loopDelayMaxMs, sinceLastFrameMs: close.sinceLastFrameMs });
    // The CLI says so in words, beside the close code.
    const cli = await runCli(['status', '--socket', w.socket], w.env);
    expect(cli.stdout).toMatch(/\b428 .* ago after a \d+(\.\d+)?s? local stall/);
    expect(cli.stdout).toMatch(/^loop {6}delay p99 [\d.]+ ms, max [\d.]+ ms \(last minute\)/m);
    await w.waitState('main', 'open');
  });
});
