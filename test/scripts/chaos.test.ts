// Short, seeded runs of the chaos soak (the long ones are documented in README).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHAOS = fileURLToPath(new URL('../../scripts/chaos.mjs', import.meta.url));

function runChaos(args: string[]): Promise<{ code: number | null; result: Record<string, number>; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHAOS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => resolve({ code, result: JSON.parse(out.trim().split('\n').pop() || '{}'), stderr: err }));
  });
}

describe('chaos soak (short, seeded)', () => {
  it('random faults on 2 accounts: nothing lost, nothing shown twice, no alert to a peer, no policy broken', async () => {
    const r = await runChaos(['--accounts', '2', '--messages', '80', '--seconds', '12', '--seed', '11']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.result).toMatchObject({ accounts: 2, lost: 0, peerDuplicates: 0, alertsToPeers: 0, policyViolations: 0 });
    expect(r.result.faultsInjected).toBeGreaterThan(3);
    expect(r.result.sent).toBeGreaterThan(60);
  }, 180_000);

  it('with kill -9 of the daemon every few seconds: the same accounting holds', async () => {
    const r = await runChaos(['--accounts', '2', '--messages', '80', '--seconds', '12', '--seed', '5', '--kill-every', '4']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.result).toMatchObject({ lost: 0, peerDuplicates: 0, alertsToPeers: 0, policyViolations: 0 });
    expect(r.result.kills).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
