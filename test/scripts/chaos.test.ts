// Short, seeded runs of the chaos soak (the long ones are documented in README). The outbox's
// settle window is 3 s here, not 10: rows left unknown by a fault still settle or are re-sent,
// and later rows to the same peer wait behind them for less of the run.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHAOS = fileURLToPath(new URL('../../scripts/chaos.mjs', import.meta.url));

type ChaosResult = Record<string, any>;

function runChaos(args: string[]): Promise<{ code: number | null; result: ChaosResult; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHAOS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => resolve({ code, result: JSON.parse(out.trim().split('\n').pop() || '{}'), stderr: err }));
  });
}

/**
 * The counts could have been non-zero: an operator chat with an alert sink, an allowTo account,
 * a shadow account; each kind of send the policy must refuse was tried and refused; the 440 at
 * the end raised an alert the operator received; every peer that decrypted anything was checked.
 * Inbound: peers wrote to every account (some from a stranger a0's allowFrom ignores), some of
 * it came from the emulator's offline queue, and the stream consumer was cut off and reconnected.
 */
function expectAWorldThatCouldFail(r: ChaosResult): void {
  expect(r.world).toMatchObject({ operators: 1, alertSinkAccount: 'a0', allowToAccounts: ['a0'], shadowAccounts: ['a1'] });
  expect(r.attempts.unlisted).toBeGreaterThan(0);
  expect(r.attempts.shadowReply).toBeGreaterThan(0);
  expect(r.attempts.forbidden).toBeGreaterThan(0);
  expect(r.deniedAsExpected).toBe(r.attempts.unlisted + r.attempts.shadowReply + r.attempts.forbidden);
  expect(r.inboundToShadow).toBeGreaterThan(0);
  expect(r.alertsRaised).toContain('conflict(a1)');
  expect(r.alertsToOperators).toBeGreaterThanOrEqual(1);
  expect(r.peersChecked).toBeGreaterThanOrEqual(7); // 6 contacts, the operator; more if anything reached another number
  expect(r).toMatchObject({ policyViolationsAtPeers: 0, unexpectedAtPeers: 0, refusedWrongly: 0, acceptedWrongly: 0 });
  expect(r.inboundSettled).toBe(true);
  expect(r.inboundSent).toBeGreaterThan(r.inboundToShadow); // not only the shadow account was written to
  expect(r.inboundIgnored).toBeGreaterThan(0);
  expect(r.consumerCuts).toBeGreaterThan(0);
  expect(r.consumerConnections).toBeGreaterThan(1);
  expect(r.consumerReceived).toBeGreaterThanOrEqual(r.inboundSent - r.inboundIgnored);
  expect(r).toMatchObject({ inboundLostReceipted: 0, inboundWrongStatus: 0, inboxUnexpected: 0, consumerGaps: 0, consumerIgnored: 0 });
}

/** Every message a peer sent is in the inbox once; the consumer got every readable row, none again after its ack. */
const INBOX_CLEAN = { inboundLost: 0, inboundDuplicates: 0, consumerMissed: 0, consumerDuplicatesAfterAck: 0 };

describe('chaos soak (short, seeded)', () => {
  it('random faults on 2 accounts: nothing lost, nothing shown twice, no alert to a peer, no policy broken; the inbox and its consumer miss and repeat nothing', async () => {
    const r = await runChaos(['--accounts', '2', '--messages', '80', '--seconds', '12', '--seed', '11', '--settle-ms', '3000']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.result).toMatchObject({ accounts: 2, lost: 0, peerDuplicates: 0, alertsToPeers: 0, policyViolations: 0, ...INBOX_CLEAN });
    expect(r.result.faultsInjected).toBeGreaterThan(3);
    expect(r.result.sent).toBeGreaterThan(60);
    expectAWorldThatCouldFail(r.result);
  }, 180_000);

  it('with kill -9 of the daemon every few seconds: the same accounting holds', async () => {
    const r = await runChaos(['--accounts', '2', '--messages', '80', '--seconds', '12', '--seed', '5', '--kill-every', '4', '--settle-ms', '3000']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.result).toMatchObject({ lost: 0, peerDuplicates: 0, alertsToPeers: 0, policyViolations: 0, ...INBOX_CLEAN });
    expect(r.result.kills).toBeGreaterThanOrEqual(1);
    expectAWorldThatCouldFail(r.result);
  }, 180_000);

  it('on a cluster of 3 daemons sharing PostgreSQL, one killed with -9 now and then: no loss, no repeat, no alert to a peer, no policy broken, no account run by two daemons at once; the shared inbox stores each message once and its consumer misses nothing', async () => {
    const r = await runChaos(['--hosts', '3', '--accounts', '3', '--messages', '60', '--seconds', '15', '--seed', '3', '--kill-every', '5', '--settle-ms', '3000']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.result).toMatchObject({ hosts: 3, lost: 0, peerDuplicates: 0, alertsToPeers: 0, policyViolations: 0, doubleOwnership: 0, conflictsSeen: 0, ...INBOX_CLEAN });
    // It could have failed: daemons were killed while sending, refused sends were tried and
    // refused, the operator got the final conflict's alert through the cluster, peers wrote in.
    expect(r.result.kills).toBeGreaterThanOrEqual(1);
    expect(r.result.sent).toBeGreaterThan(40);
    expect(r.result.deniedAsExpected).toBe(r.result.attempts.unlisted + r.result.attempts.shadowReply + r.result.attempts.forbidden);
    expect(r.result.deniedAsExpected).toBeGreaterThan(0);
    expect(r.result.alertsRaised).toContain('conflict(a2)');
    expect(r.result.alertsToOperators).toBeGreaterThanOrEqual(1);
    expect(r.result.inboundSent).toBeGreaterThan(0);
    // The shared inbox's stream consumer read through more than one daemon's connection and acknowledged.
    expect(r.result.consumerReceived).toBeGreaterThan(0);
    expect(r.result.consumerConnections).toBeGreaterThan(1);
    expect(r.result.consumerAcks).toBeGreaterThan(0);
    expect(r.result).toMatchObject({ policyViolationsAtPeers: 0, unexpectedAtPeers: 0, refusedWrongly: 0, acceptedWrongly: 0 });
  }, 240_000);
});
