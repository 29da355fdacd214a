// README's main command, shortened: the demo must end with nothing lost or duplicated.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEMO = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));

describe('npm run demo', () => {
  it('a 20-second run prints one JSON summary with nothing lost, duplicated or leaked, and exits 0', async () => {
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
    expect(summary.alertsRaised).toContain('conflict(support)');
    expect(summary.alertsToOperatorChat).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
