// README's main command, shortened: the demo must end with nothing lost or duplicated, either way,
// and its stream consumer must resume after being cut off with exactly what it had not acknowledged.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEMO = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));

describe('npm run demo', () => {
  it('a 20-second run prints one JSON summary with nothing lost, duplicated or leaked, the bot resumed with exactly what it had not acknowledged, and exits 0', async () => {
    const child = spawn(process.execPath, [DEMO, '--seconds', '20', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, err.slice(-2000)).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!);
    expect(summary).toMatchObject({ ok: true, lost: 0, peerDuplicates: 0, reachedRefusedPeers: 0, unexpectedAtPeers: 0, alertsToOtherChats: 0 });
    // The two kinds of duplicate are reported apart: a new id shown twice (must be 0) and same-id wire copies (counted, shown once).
    expect(typeof summary.wireDuplicates).toBe('number');
    expect(summary.peersChecked).toBeGreaterThanOrEqual(3); // two customers and the operator, at least
    expect(summary.sent).toBeGreaterThan(50);
    expect(summary.deniedByPolicy).toBeGreaterThan(10);
    // Every planned fault was injected, the 440 at the end too, however slow the sends ran.
    expect(summary.faults).toHaveLength(7);
    expect(summary.alertsRaised).toContain('conflict(support)');
    expect(summary.alertsToOperatorChat).toBeGreaterThanOrEqual(1);
    // What the peers wrote is in the inbox once each.
    expect(summary.inbound).toMatchObject({ sent: 14, stored: 14, lost: 0, lostReceipted: 0, duplicates: 0 });
    // The bot read some, acknowledged part, was cut off while more arrived, and on reconnecting was
    // handed exactly what it had not acknowledged: nothing missed, nothing acknowledged again.
    const c = summary.consumer;
    expect(c.error).toBeUndefined();
    expect(c).toMatchObject({ readBeforeCut: 8, acknowledgedBeforeCut: 5, arrivedWhileCut: 6, exact: true, missed: 0, duplicatesAfterAck: 0, gaps: 0 });
    expect(c.resumedWith).toBe(c.readBeforeCut - c.acknowledgedBeforeCut + c.arrivedWhileCut);
    expect(c.received).toBe(c.readBeforeCut + c.resumedWith);
  }, 120_000);
});
