import { createServer, connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LivenessMonitor, probeWaitMs, type Pinger } from '../../src/accounts/liveness.js';

/** A pinger whose answers the test controls. */
class FakePinger implements Pinger {
  calls: Array<{ waitMs: number; answer: () => void; fail: () => void }> = [];
  ping(waitMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.calls.push({ waitMs, answer: resolve, fail: () => reject(new Error('timed out')) });
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
    expect(pinger.calls[0]!.waitMs).toBe(probeWaitMs(3000));
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

  it('keeps the deadline itself: a probe unanswered for probeDeadlineMs is stale, not a moment before', async () => {
    const pinger = new FakePinger();
    const stale = vi.fn();
    const m = new LivenessMonitor({ pinger, policy, onStale: stale });
    m.start();
    await vi.advanceTimersByTimeAsync(10_000 + 2999);
    expect(stale).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(1); // the turn of I/O before the verdict (a fake immediate runs a tick later)
    expect(stale).toHaveBeenCalledWith({ deadlineMs: 3000 });
    expect(m.traffic.probesMissed).toBe(1);
  });

  it('gives a probe back the time its deadline timer was late (a stalled loop), then judges', async () => {
    let stalledMs = 0; // what the fake clock's timers do not see: the loop was busy
    const timers = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout), now: () => Date.now() + stalledMs };
    const pinger = new FakePinger();
    const stale = vi.fn();
    const m = new LivenessMonitor({ pinger, policy, onStale: stale, timers });
    m.start();
    await vi.advanceTimersByTimeAsync(10_000);
    stalledMs = 2500; // the deadline timer will fire 2.5 s late
    await vi.advanceTimersByTimeAsync(3000);
    expect(stale).not.toHaveBeenCalled(); // set again for 2.5 s
    await vi.advanceTimersByTimeAsync(2000);
    pinger.calls[0]!.answer(); // read within the time given back
    await vi.advanceTimersByTimeAsync(0);
    expect(stale).not.toHaveBeenCalled();
    // Without an answer the second probe is judged once the credit is spent: 4 deadlines at most.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pinger.calls).toHaveLength(2);
    stalledMs += 20_000; // far later than the credit allows
    await vi.advanceTimersByTimeAsync(3001);
    expect(stale).toHaveBeenCalledTimes(1);
    m.stop();
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

describe('LivenessMonitor with real I/O', () => {
  let server: ReturnType<typeof createServer>;
  let client: Socket;
  beforeEach(async () => {
    vi.useRealTimers();
    server = createServer((s) => s.on('data', (d) => s.write(d))); // an echo: the "server" answers at once
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    client = connect(port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
  });
  afterEach(async () => {
    client.destroy();
    await new Promise((r) => server.close(r));
  });

  it('a loop stalled past the deadline while the answer waits in the kernel is not a stale socket', async () => {
    let answered: (() => void) | null = null;
    client.on('data', () => answered?.());
    const pinger: Pinger = {
      // Like Baileys' query: rejects when its own timer fires first.
      ping: (waitMs) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('timed out')), waitMs);
          answered = () => (clearTimeout(timer), resolve());
          client.write('ping');
          // Heavy work of another account holds the loop for 4 deadlines; the echo arrives meanwhile.
          const until = Date.now() + 1200;
          while (Date.now() < until);
        }),
    };
    const stale = vi.fn();
    const rtts: number[] = [];
    let done = () => {};
    const twoProbes = new Promise<void>((resolve) => (done = resolve));
    const m = new LivenessMonitor({
      pinger,
      policy: { intervalMs: 50, idleWindowMs: 900_000, probeDeadlineMs: 300 },
      onStale: () => (stale(), done()),
      onRtt: (ms) => (rtts.push(ms), rtts.length >= 2 && done()),
    });
    m.start();
    await twoProbes;
    m.stop();
    expect(stale).not.toHaveBeenCalled();
    expect(rtts[0]).toBeGreaterThanOrEqual(1200); // the round trip shows the stall ...
    expect(m.traffic.probesMissed).toBe(0); // ... and nobody blames the socket
  });
});

describe('probe spread', () => {
  const policy = { intervalMs: 10_000, idleWindowMs: 900_000, probeDeadlineMs: 3000 };

  it('sends each probe in the last tenth of the interval, never later, as drawn', async () => {
    const pinger = new FakePinger();
    const draws = [0.5, 0.999, 0];
    const m = new LivenessMonitor({ pinger, policy, onStale: vi.fn(), spread: () => draws.shift()! });
    m.start();
    await vi.advanceTimersByTimeAsync(9_499);
    expect(pinger.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // 0.5: 500 ms early
    expect(pinger.calls).toHaveLength(1);
    pinger.calls[0]!.answer();
    await vi.advanceTimersByTimeAsync(9_001); // 0.999: 999 ms early
    expect(pinger.calls).toHaveLength(2);
    pinger.calls[1]!.answer();
    await vi.advanceTimersByTimeAsync(9_999); // 0: on the interval
    expect(pinger.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(pinger.calls).toHaveLength(3);
    m.stop();
  });

  it('monitors started in the same moment do not probe in the same moment', async () => {
    const pinger = new FakePinger();
    const at: number[] = [];
    const spy = { ping: (w: number) => (at.push(Date.now()), pinger.ping(w)) };
    const ms = Array.from({ length: 100 }, () => new LivenessMonitor({ pinger: spy, policy, onStale: vi.fn(), spread: Math.random }));
    for (const m of ms) m.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(at).toHaveLength(100);
    // Without the spread all 100 would go at 10,000 ms; drawn over 1,000 ms, a handful share a millisecond at most.
    expect(new Set(at).size).toBeGreaterThan(80);
    expect(Math.min(...at)).toBeGreaterThanOrEqual(9_000);
    for (const m of ms) m.stop();
  });
});
