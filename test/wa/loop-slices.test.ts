import { describe, expect, it } from 'vitest';
import { SLICE_MS, sliceBoundary, slicePauses } from '../../src/wa/loop-slices.js';

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

/** Records the longest time the loop went without running a timer, while `work` runs. */
async function longestGap(work: () => Promise<void>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const beat = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  try {
    await work();
    await new Promise((r) => setTimeout(r, 5)); // a last beat after the work
  } finally {
    clearInterval(beat);
  }
  return longest;
}

describe('sliceBoundary', () => {
  it('lets the loop take a turn within a slice of a long chain of promise-resolved work', async () => {
    let step = 0;
    let turnAt: number | null = null;
    setImmediate(() => (turnAt = step)); // I/O of other accounts, say
    const before = slicePauses();
    for (; step < 50; step++) {
      await sliceBoundary(); // a key read
      busy(2); // a device's encryption
    }
    // Without boundaries the loop would wait for all 100 ms; with them it ran within a slice or two.
    expect(turnAt).not.toBeNull();
    expect(turnAt!).toBeLessThanOrEqual(Math.ceil((2 * SLICE_MS) / 2) + 1);
    expect(slicePauses()).toBeGreaterThan(before);
  });

  it('many chains started at once (a group send encrypting for every device) go on one per turn, not back to back', async () => {
    const chains = 60;
    const done: number[] = [];
    const gap = await longestGap(async () => {
      await Promise.all(
        Array.from({ length: chains }, async (_, i) => {
          await sliceBoundary(); // each encryption reads its session first
          busy(4);
          done.push(i);
        }),
      );
    });
    expect(done).toHaveLength(chains);
    expect(done).toEqual([...done].sort((a, b) => a - b)); // in the order they paused
    // 240 ms of work in all, which back to back is one gap of about 240 ms; the timers ran between
    // the chains (a slice and a chain, 14 ms, with room for a loaded machine preempting this process).
    expect(gap).toBeLessThan(80);
  });

  it('does not pause a short chain of work', async () => {
    await new Promise((r) => setImmediate(r)); // a fresh turn
    const calls: Array<{ at: number; paused: boolean }> = [];
    const first = performance.now();
    for (let i = 0; i < 20; i++) {
      const pause = sliceBoundary();
      calls.push({ paused: pause !== null, at: performance.now() - first });
      await pause; // one chain: each read after the last one's continuation
    }
    // Every call within a slice of the first went on at once (a preempted test process may pass a slice).
    expect(calls.filter((c) => c.at < SLICE_MS && c.paused)).toEqual([]);
    expect(calls[0]!.paused).toBe(false);
  });
});
