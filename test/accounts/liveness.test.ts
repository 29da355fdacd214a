import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LivenessMonitor, type Pinger } from '../../src/accounts/liveness.js';

/** A pinger whose answers the test controls. */
class FakePinger implements Pinger {
  calls: Array<{ deadlineMs: number; answer: () => void; fail: () => void }> = [];
  ping(deadlineMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.calls.push({ deadlineMs, answer: resolve, fail: () => reject(new Error('timed out')) });
    });
  }
}

beforeEach(() => vi.useFakeTimers({ now: 0 }));
afterEach(() => vi.useRealTimers());

describe('LivenessMonitor', () => {
  const policy = { intervalMs: 10_000, idleWindowMs: 900_000, probeDeadlineMs: 3000 };

  it('pings every interval after each answer and records the round trip', async () => {
    const pinger = new FakePinger();
    const stale = vi.fn();
    const m = new LivenessMonitor({ pinger, policy, onStale: stale });
    m.start();
    await vi.advanceTimersByTimeAsync(9_999);
    expect(pinger.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(pinger.calls).toHaveLength(1);
    expect(pinger.calls[0]!.deadlineMs).toBe(3000);
    await vi.advanceTimersByTimeAsync(120);
    pinger.calls[0]!.answer();
    await vi.advanceTimersByTimeAsync(0);
    expect(m.traffic.lastProbeRttMs).toBe(120);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pinger.calls).toHaveLength(2);
    expect(m.traffic).toMatchObject({ probesSent: 2, probesMissed: 0, lastSentAt: 20_120 });
    expect(stale).not.toHaveBeenCalled();
    m.stop();
  });

  it('calls onStale once when a probe is not answered, and stops pinging', async () => {
    const pinger = new FakePinger();
    const stale = vi.fn();
    const m = new LivenessMonitor({ pinger, policy, onStale: stale });
    m.start();
    await vi.advanceTimersByTimeAsync(10_000);
    pinger.calls[0]!.fail();
    await vi.advanceTimersByTimeAsync(0);
    expect(stale).toHaveBeenCalledTimes(1);
    expect(stale).toHaveBeenCalledWith({ deadlineMs: 3000 });
    await vi.advanceTimersByTimeAsync(100_000);
    expect(pinger.calls).toHaveLength(1);
    expect(m.traffic.probesMissed).toBe(1);
  });

  it('sends nothing when the interval is 0', async () => {
    const pinger = new FakePinger();
    const m = new LivenessMonitor({ pinger, policy: { ...policy, intervalMs: 0 }, onStale: vi.fn() });
    m.start();
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(pinger.calls).toHaveLength(0);
  });

  it('ignores a probe that settles after stop', async () => {
    const pinger = new FakePinger();
    const stale = vi.fn();
    const m = new LivenessMonitor({ pinger, policy, onStale: stale });
    m.start();
    await vi.advanceTimersByTimeAsync(10_000);
    m.stop();
    pinger.calls[0]!.fail();
    await vi.advanceTimersByTimeAsync(0);
    expect(stale).not.toHaveBeenCalled();
  });

  it('tracks the largest silent gap between received stanzas', async () => {
    const m = new LivenessMonitor({ pinger: new FakePinger(), policy, onStale: vi.fn() });
    await vi.advanceTimersByTimeAsync(5000);
    m.noteReceived();
    await vi.advanceTimersByTimeAsync(12_000);
    m.noteReceived();
    await vi.advanceTimersByTimeAsync(1000);
    m.noteReceived();
    expect(m.traffic).toMatchObject({ largestSilentGapMs: 12_000, lastReceivedAt: 18_000 });
  });

  it('lastSentAt counts probes only; lastStanzaSentAt counts every stanza sent, probes included', async () => {
    const pinger = new FakePinger();
    const m = new LivenessMonitor({ pinger, policy, onStale: vi.fn() });
    m.start();
    await vi.advanceTimersByTimeAsync(4000);
    m.noteStanzaSent(); // a message, say
    expect(m.traffic).toMatchObject({ lastSentAt: null, lastStanzaSentAt: 4000 });
    await vi.advanceTimersByTimeAsync(6000); // the first probe at 10 s
    expect(m.traffic).toMatchObject({ lastSentAt: 10_000, lastStanzaSentAt: 10_000 });
    pinger.calls[0]!.answer();
    await vi.advanceTimersByTimeAsync(500);
    m.noteStanzaSent(); // a receipt
    expect(m.traffic).toMatchObject({ lastSentAt: 10_000, lastStanzaSentAt: 10_500 });
    m.stop();
  });
});
